import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { callMonitor, serveControl } from '../../src/monitor/control.js';
import { peerCred } from '../../src/native/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-peer-'));
fs.chmodSync(dir, 0o711); // so that uid 65534 can reach the socket path in this test
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the control socket admits only the uids it is told (SO_PEERCRED)', () => {
  it('serves root, disconnects uid 65534 before reading, and says why', async () => {
    const sock = path.join(dir, 'm.sock');
    const refused: string[] = [];
    let handled = 0;
    const server = await serveControl(sock, async () => ((handled += 1), { result: { hi: 1 } }), { allowUids: [0], onRefused: (w) => refused.push(w) });
    try {
      fs.chmodSync(sock, 0o666); // the mode would stop uid 65534 first; the peer check must stand alone
      expect(await callMonitor(sock, { op: 'ps' })).toEqual({ hi: 1 });
      expect(handled).toBe(1);
      // not spawnSync: the server answering (or not) runs on this process's event loop
      const probe = await promisify(execFile)(
        'setpriv',
        ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e',
          `const s=require('net').createConnection(${JSON.stringify(sock)});let got='';s.on('connect',()=>{console.log('connected');s.write('{"op":"destroy"}\\n')});s.on('data',d=>got+=d);s.on('close',()=>console.log('answer:'+JSON.stringify(got)));s.on('error',e=>console.log('error:'+e.code))`],
        { encoding: 'utf8', timeout: 20000 },
      );
      expect(probe.stdout).toContain('connected');
      expect(probe.stdout).toContain('answer:""');
      expect(handled).toBe(1);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatch(/^refused a connection from pid \d+ uid 65534 \(allowed: uid 0\)$/);
    } finally {
      server.close();
    }
  });

  it('peerCred reads the peer of a connected socket and refuses other fds', () => {
    expect(() => peerCred(0x7fffffff)).toThrow(/peerCred/);
    const f = fs.openSync(path.join(dir, 'plain'), 'w');
    try {
      expect(() => peerCred(f)).toThrow(/ENOTSOCK|peerCred/);
    } finally {
      fs.closeSync(f);
    }
  });
});
