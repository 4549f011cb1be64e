import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransferTable, type Slot, type TableLimits } from '../../../src/tftp/table.js';

const LIMITS: TableLimits = {
  maxTransfers: 4,
  maxUnconfirmed: 2,
  maxPerAddress: 3,
  maxUnconfirmedPerAddress: 2,
  suspectStrikes: 2,
  suspectMs: 1000,
};

class Entry implements Slot {
  evicted = false;
  constructor(
    readonly address: string,
    readonly key = `${address}:${Math.random()}`,
  ) {}
  evict(): void {
    this.evicted = true;
  }
}

function admitAdd(t: TransferTable<Entry>, address: string): Entry | string {
  const a = t.admit(address);
  if (!a.ok) return a.why;
  const e = new Entry(address);
  t.add(e);
  return e;
}

void describe('TransferTable: who holds a transfer slot', () => {
  void it('the unconfirmed budget is full: the oldest unconfirmed entry makes room, confirmed ones stay', () => {
    const t = new TransferTable<Entry>(LIMITS);
    const a = admitAdd(t, '10.0.0.1') as Entry;
    t.confirm(a);
    const b = admitAdd(t, '10.0.0.2') as Entry;
    const c = admitAdd(t, '10.0.0.3') as Entry;
    const d = admitAdd(t, '10.0.0.4') as Entry;
    assert.equal(b.evicted, true, 'oldest unconfirmed went');
    assert.equal(a.evicted, false, 'confirmed entries are never evicted');
    assert.equal(c.evicted, false);
    assert.equal(t.size, 3);
    assert.equal(t.unconfirmed, 2);
    assert.ok(d instanceof Entry);
  });

  void it('an unconfirmed entry younger than the grace is not evicted: the newcomer is answered busy', () => {
    let now = 0;
    const t = new TransferTable<Entry>({ ...LIMITS, unconfirmedGraceMs: 1000 }, () => now);
    const b = admitAdd(t, '10.0.0.2') as Entry;
    now = 500;
    admitAdd(t, '10.0.0.3');
    assert.equal(admitAdd(t, '10.0.0.4'), 'busy', 'both unconfirmed entries are within their grace');
    assert.equal(b.evicted, false);
    now = 1000;
    assert.ok(admitAdd(t, '10.0.0.4') instanceof Entry, 'the oldest has had its second: it makes room');
    assert.equal(b.evicted, true);
    assert.equal(admitAdd(t, '10.0.0.5'), 'busy', 'the next one is still within its grace');
  });

  void it('a table full of confirmed transfers answers busy', () => {
    const t = new TransferTable<Entry>({ ...LIMITS, maxUnconfirmed: 4 });
    for (let i = 0; i < 4; i++) t.confirm(admitAdd(t, `10.0.0.${i + 1}`) as Entry);
    assert.equal(admitAdd(t, '10.0.0.9'), 'busy');
  });

  void it('per-address caps hold for all transfers and for unconfirmed ones', () => {
    const t = new TransferTable<Entry>({ ...LIMITS, maxTransfers: 10, maxUnconfirmed: 10 });
    admitAdd(t, '10.0.0.1');
    admitAdd(t, '10.0.0.1');
    assert.equal(admitAdd(t, '10.0.0.1'), 'address-busy');
  });

  void it('an address struck often enough is left alone until its suspicion expires', () => {
    let now = 0;
    const t = new TransferTable<Entry>(LIMITS, () => now);
    t.strike('10.0.0.5');
    assert.ok(admitAdd(t, '10.0.0.5') instanceof Entry, 'one strike is not enough');
    t.strike('10.0.0.6');
    t.strike('10.0.0.6');
    assert.equal(admitAdd(t, '10.0.0.6'), 'suspect');
    now = 1001;
    assert.ok(admitAdd(t, '10.0.0.6') instanceof Entry, 'forgiven after suspectMs');
  });

  void it('remove frees every count, and is idempotent', () => {
    const t = new TransferTable<Entry>(LIMITS);
    const a = admitAdd(t, '10.0.0.1') as Entry;
    t.remove(a);
    t.remove(a);
    assert.equal(t.size, 0);
    assert.equal(t.unconfirmed, 0);
    assert.ok(admitAdd(t, '10.0.0.1') instanceof Entry);
  });
});
