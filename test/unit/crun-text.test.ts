import { describe, expect, it } from 'vitest';
import { runcStartError } from '../../src/channel/crun-text.js';

describe("crun's start errors in runc's words", () => {
  it.each([
    ['executable file `/run.sh` not found in $PATH: No such file or directory', 'unable to start container process: exec: "/run.sh": stat /run.sh: no such file or directory'],
    ['executable file `nope` not found in $PATH: No such file or directory', 'unable to start container process: exec: "nope": executable file not found in $PATH'],
    ['\x1b[31m2026-12-04T19:57:09.123456Z: exec container process (missing dynamic library?) `/run.sh`: No such file or directory\x1b[0m', 'unable to start container process: exec: "/run.sh": stat /run.sh: no such file or directory'],
    ['exec container process `/etc`: Permission denied', 'unable to start container process: exec: "/etc": permission denied'],
    ['the target `/proc` is invalid: Not a directory', 'unable to start container process: the target `/proc` is invalid: Not a directory'],
  ])('%j', (crun, runc) => expect(runcStartError(crun)).toBe(runc));
});
