#!/usr/bin/env node
// The pxe-probe command: a PXE client for diagnosing a network (src/probe/).
import { main } from '../cli/probe-main.js';

void main();
