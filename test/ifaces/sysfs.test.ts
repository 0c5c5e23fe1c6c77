import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { listInterfaces, readInterfaces } from '../../src/ifaces/sysfs.ts';

function fakeSysfs(t: TestContext, names: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'flowtap-sysfs-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  names.forEach((name, i) => {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'ifindex'), `${i + 1}\n`);
    writeFileSync(join(root, name, 'flags'), '0x1003\n');
    writeFileSync(join(root, name, 'operstate'), 'up\n');
  });
  return root;
}

/** A reader that fails like sysfs does for `name` while the kernel unregisters it. */
function deletedMidRead(name: string, code: string) {
  return (path: string): string => {
    if (path.includes(`/${name}/flags`)) throw Object.assign(new Error(`${code}: read ${path}`), { code });
    return readFileSync(path, 'utf8');
  };
}

for (const code of ['EINVAL', 'ENODEV', 'ENOENT']) {
  test(`an interface whose attributes fail with ${code} while it is deleted is skipped and the rest listed`, (t) => {
    const root = fakeSysfs(t, ['eth1', 'veth7', 'eth2']);
    const vanished: string[] = [];
    const listing = readInterfaces(root, {
      readText: deletedMidRead('veth7', code),
      onVanished: (name) => vanished.push(name),
    });
    assert.deepEqual([...listing.keys()].sort(), ['eth1', 'eth2']);
    assert.deepEqual(vanished, ['veth7']);
  });
}

test('interfaces deleted during one listing are reported in one warning without an error object', (t) => {
  const root = fakeSysfs(t, ['eth1', 'veth7', 'veth8']);
  const warnings: unknown[][] = [];
  const fail = (path: string): string => {
    if (/veth[78]\/operstate/.test(path)) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    return readFileSync(path, 'utf8');
  };
  const listing = listInterfaces(root, (...args: unknown[]) => warnings.push(args), { readText: fail });
  assert.deepEqual([...listing.keys()], ['eth1']);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].length, 1, 'a message only: no error, so no stack is logged');
  assert.match(String(warnings[0][0]), /skipped 2 interface\(s\) deleted while .* was listed: veth7, veth8/);
});

test('a failure that is not a vanished interface still fails the listing', (t) => {
  const root = fakeSysfs(t, ['eth1']);
  assert.throws(() => readInterfaces(root, { readText: deletedMidRead('eth1', 'EACCES') }), /EACCES/);
});
