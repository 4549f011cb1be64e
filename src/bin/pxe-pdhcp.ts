#!/usr/bin/env node
// The pxe-pdhcp command. Everything it does starts in src/cli/pxe-pdhcp-main.ts.
import { main } from '../cli/pxe-pdhcp-main.js';

main();
