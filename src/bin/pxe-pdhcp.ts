#!/usr/bin/env node
// The pxe-pdhcp command. Everything it does starts in src/cli/main.ts.
import { main } from '../cli/main.js';

main();
