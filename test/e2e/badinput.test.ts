import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSpec } from '../../src/oci/default-spec.js';
import { expectClean, kr, leftovers, makeRootfs, requirePrerequisites, testEnv, type Result, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('bad');
});
afterAll(() => env.cleanup());

function rawBundle(name: string, config: string | undefined, rootfs = true): string {
  const b = path.join(env.tmp, name);
  fs.mkdirSync(b, { recursive: true });
  if (rootfs) makeRootfs(path.join(b, 'rootfs'));
  if (config !== undefined) fs.writeFileSync(path.join(b, 'config.json'), config);
  return b;
}

let n = 0;
async function create(bundle: string, id = `bad${n++}`, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ r: Result; log: string }> {
  const log = path.join(env.tmp, `log-${n++}.json`);
  const saved = { ...process.env };
  Object.assign(process.env, extraEnv);
  try {
    const r = await kr(env.root, ['--log', log, '--log-format', 'json', 'create', '--bundle', bundle, id]);
    return { r, log };
  } finally {
    process.env = saved;
  }
}

describe('bad input: one clear error line, exit 1, nothing left behind', () => {
  it('a missing bundle directory', async () => {
    const { r, log } = await create(path.join(env.tmp, 'nope'));
    expectClean(env, r, /bundle .*nope: no such directory/, log);
  });

  it('a missing config.json', async () => {
    const { r, log } = await create(rawBundle('noconfig', undefined));
    expectClean(env, r, /config\.json: no such file or directory/, log);
  });

  it('invalid JSON', async () => {
    const { r, log } = await create(rawBundle('badjson', '{"ociVersion": "1.0.2", '));
    expectClean(env, r, /invalid JSON/, log);
  });

  it('a config that breaks the schema names the path', async () => {
    const spec = defaultSpec(['true']);
    (spec['process'] as Record<string, unknown>)['args'] = 'true';
    const { r, log } = await create(rawBundle('schema', JSON.stringify(spec)));
    expectClean(env, r, /process\.args: must be array/, log);
  });

  it('a config without a process', async () => {
    const spec = defaultSpec(['true']);
    delete spec['process'];
    const { r, log } = await create(rawBundle('noproc', JSON.stringify(spec)));
    expectClean(env, r, /process: is required/, log);
  });

  it('a terminal without a console socket (create detaches, as runc refuses)', async () => {
    const spec = defaultSpec(['true']);
    (spec['process'] as Record<string, unknown>)['terminal'] = true;
    const { r, log } = await create(rawBundle('tty', JSON.stringify(spec)));
    expectClean(env, r, /cannot allocate tty .* without setting console socket/, log);
  });

  it('a bind mount whose source does not exist', async () => {
    const spec = defaultSpec(['true']);
    (spec['mounts'] as unknown[]).push({ destination: '/data', type: 'bind', source: path.join(env.tmp, 'no-such-dir'), options: ['rbind'] });
    const { r, log } = await create(rawBundle('nobind', JSON.stringify(spec)));
    expectClean(env, r, /mounts\.7\.source: .*no-such-dir: no such file or directory/, log);
  });

  it('a console socket nobody listens on', async () => {
    const spec = defaultSpec(['true']);
    (spec['process'] as Record<string, unknown>)['terminal'] = true;
    const b = rawBundle('deadsock', JSON.stringify(spec));
    const log = path.join(env.tmp, `log-${n++}.json`);
    const r = await kr(env.root, ['--log', log, '--log-format', 'json', 'create', '--console-socket', path.join(env.tmp, 'nobody.sock'), '--bundle', b, `bad${n++}`]);
    expectClean(env, r, /console socket .*nobody\.sock: .*No such file or directory/, log);
  });

  it('a failing prestart hook fails create', async () => {
    const spec = defaultSpec(['true']);
    spec['hooks'] = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', 'echo hook says no >&2; exit 3'] }] };
    const { r, log } = await create(rawBundle('badhook', JSON.stringify(spec)));
    expectClean(env, r, /prestart hook \/bin\/sh exited 3: hook says no/, log);
  });

  it('a missing rootfs', async () => {
    const { r, log } = await create(rawBundle('norootfs', JSON.stringify(defaultSpec(['true'])), false));
    expectClean(env, r, /root\.path: .*rootfs: no such directory/, log);
  });

  it.each(['bad/id', '..', 'a b', 'x$y', ''])('the id %j', async (id) => {
    const b = rawBundle(`id${n++}`, JSON.stringify(defaultSpec(['true'])));
    const { r, log } = await create(b, id);
    expectClean(env, r, /invalid container id/, log);
  });

  it('an id already in use leaves the first container alone', async () => {
    const b = rawBundle('dup', JSON.stringify(defaultSpec(['sleep', '600'])));
    expect((await create(b, 'dup')).r.code).toBe(0);
    const { r } = await create(b, 'dup');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('container dup already exists');
    expect(JSON.parse((await kr(env.root, ['state', 'dup'])).stdout.toString())).toMatchObject({ status: 'created' });
    expect((await kr(env.root, ['delete', '--force', 'dup'])).code).toBe(0);
    expect(leftovers(env)).toEqual([]);
  });

  it.each([['start'], ['state'], ['kill'], ['delete']])('an unknown id for %s', async (verb) => {
    const r = await kr(env.root, [verb, 'no-such-container']);
    expectClean(env, r, /container no-such-container does not exist/);
  });

  it('a bad signal name', async () => {
    const b = rawBundle('sig', JSON.stringify(defaultSpec(['sleep', '600'])));
    expect((await create(b, 'sig')).r.code).toBe(0);
    const r = await kr(env.root, ['kill', 'sig', 'SIGNOPE']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('invalid signal "SIGNOPE"');
    expect((await kr(env.root, ['delete', '--force', 'sig'])).code).toBe(0);
    expect(leftovers(env)).toEqual([]);
  });

  it('QEMU failing to start', async () => {
    const b = rawBundle('noqemu', JSON.stringify(defaultSpec(['true'])));
    const { r, log } = await create(b, 'noqemu', { KATA_KERNEL: path.join(env.tmp, 'no-such-kernel') });
    expectClean(env, r, /QEMU failed to start/, log);
  });

  it('an agent that never comes up (the guest has no init)', async () => {
    const bogus = path.join(env.tmp, 'bogus-initrd.img');
    fs.writeFileSync(bogus, Buffer.alloc(4096));
    const b = rawBundle('noagent', JSON.stringify(defaultSpec(['true'])));
    const { r, log } = await create(b, 'noagent', { KATA_INITRD: bogus, KATA_AGENT_TIMEOUT: '30' });
    expectClean(env, r, /VM exited during start-up|handshake/, log);
  });
});
