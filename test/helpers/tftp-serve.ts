// Runs the TFTP server alone (for namespace tests and benchmarks): tftp-serve.ts ROOT ADDRESS PORT
import { createLogger } from '../../src/daemon/logging.js';
import { startTestTftp } from './tftp.js';

const [root, address, port] = process.argv.slice(2);
const log = createLogger({ level: 'info', format: 'text', sink: { kind: 'stderr' } });
const { server } = await startTestTftp({
  root: root!,
  listen: [{ address: address!, port: Number(port), transferAddress: address!, mtu: 1500 }],
  maxTransfers: 256,
  idleTimeoutMs: 10_000,
  log,
});
console.log(`listening ${server.ports.join(',')}`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
