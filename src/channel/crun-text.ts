/**
 * crun's words for a process that could not be started, in runc's: the guest runs crun, but a
 * runc user reads (and scripts match) runc's messages. crun's text reaches us through its log
 * file, or from the container's side with a timestamp and terminal colours; both are stripped.
 */
export function runcStartError(crunText: string): string {
  // eslint-disable-next-line no-control-regex
  const plain = crunText.replace(/\x1b\[[0-9;]*m/g, '').replace(/(^|; )\d{4}-\d\d-\d\dT[0-9:.]+Z?:? ?/g, '$1').trim();
  const notFound = /executable file `([^`]+)` not found in \$PATH: (.+)$/.exec(plain);
  if (notFound) return `unable to start container process: exec: ${execWhy(notFound[1] ?? '', notFound[2] ?? '')}`;
  const failed = /exec container process (?:\(missing dynamic library\?\) )?`([^`]+)`: (.+)$/.exec(plain);
  if (failed) return `unable to start container process: exec: ${execWhy(failed[1] ?? '', failed[2] ?? '')}`;
  return `unable to start container process: ${lowerFirst(plain)}`;
}

/** runc's `exec: "FILE": …` for an execve that failed with strerror text `why`. */
function execWhy(file: string, why: string): string {
  const reason = lowerFirst(why.trim());
  if (reason === 'no such file or directory') return file.includes('/') ? `"${file}": stat ${file}: ${reason}` : `"${file}": executable file not found in $PATH`;
  return `"${file}": ${reason}`;
}

/** Go's error strings start in lower case ("no such file or directory"); C's strerror does not. */
function lowerFirst(s: string): string {
  return s.length > 1 && /^[A-Z][a-z]/.test(s) ? s[0]?.toLowerCase() + s.slice(1) : s;
}
