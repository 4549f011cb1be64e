import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { summarize, table } from '../storm/report.js';
import { MAIN, runStack } from '../storm/run.js';

const root = process.getuid?.() === 0;

/**
 * A small boot storm (test/storm): 30 machines with their own MACs and addresses switched on within
 * 50 ms, DHCP proxy, 4011 for the UEFI share, the NBP, then a 4 MB kernel and initrd over TFTP,
 * all from our daemon with its default options. None may be lost, and the slowest may take at most
 * 3× the median (no capture effect), or 20 s in all on a busy machine.
 */
void describe('boot storm (30 machines, default options)', () => {
  void it('boots every machine, fairly', { timeout: 110_000 }, async () => {
    // Needs what CI has: root for the namespaces, and the built daemon. Never skipped: it fails.
    assert.ok(root, 'the storm test needs root (network namespaces): run it with sudo make test');
    assert.ok(existsSync(MAIN), `${MAIN} is missing: run make build first (make test does)`);
    const r = await runStack('ours', { n: 30, kernelMb: 4, via: 'tftp', timeoutMs: 100_000 });
    const s = summarize(r);
    console.log(`# ${table([r]).split('\n').slice(0, 3).join('\n# ')}`);
    assert.equal(s.lost, 0, JSON.stringify(s.errors));
    assert.ok(s.max <= Math.max(3 * s.p50, 20), `slowest ${s.max} s, median ${s.p50} s`);
    assert.deepEqual(
      r.warnings.filter((w) => w.message.startsWith('TFTP saturated')),
      [],
      'no saturation at 30 machines',
    );
  });
});
