import { stringify } from 'smol-toml';
import { FIELD_NAMES, FIELDS, SECTIONS } from './fields.js';
import { describeSource } from './resolve.js';
import type { ResolvedConfig, RuntimeConfig } from './types.js';

/** `kata-runtime env` output. */

function fileLine(r: ResolvedConfig): string {
  if (r.file !== undefined) {
    const why = r.choice?.via === 'flag' ? '--config' : r.choice?.via === 'env' ? 'KATA_CONF_FILE' : 'the default location';
    return `${r.file} (${why})`;
  }
  if (r.choice === undefined) return 'none: built-in defaults';
  return `none (${r.choice.path} does not exist): built-in defaults`;
}

function sourceText(r: ResolvedConfig, k: keyof RuntimeConfig): string {
  const s = r.sources[k];
  const where = s.kind === 'env' ? `env ${s.name}` : s.kind === 'file' ? 'file' : 'default';
  return s.note === undefined ? where : `${where}; ${s.note}`;
}

function tomlValue<K extends keyof RuntimeConfig>(k: K, v: RuntimeConfig[K]): unknown {
  const show = FIELDS[k].toToml;
  return show === undefined ? v : show(v);
}

/**
 * TOML: every key with its effective value and, in a comment, where it came from; warnings as
 * comments at the end. It is itself a valid configuration file.
 */
export function renderToml(r: ResolvedConfig): string {
  const out = ['# kata-runtime env: the effective configuration', `# configuration file: ${fileLine(r)}`];
  for (const section of SECTIONS) {
    out.push('', `[${section}]`);
    for (const k of FIELD_NAMES) {
      const f = FIELDS[k];
      if (f.section !== section) continue;
      out.push(`${stringify({ [f.key]: tomlValue(k, r.config[k]) }).trim()} # ${sourceText(r, k)}`);
    }
  }
  if (r.warnings.length > 0) {
    out.push('', '# warnings:');
    for (const w of r.warnings) out.push(`#   ${w.message}`);
  }
  return out.join('\n') + '\n';
}

/** JSON: the RuntimeConfig as create hands it to the monitor, each field's key and source, the warnings. */
export function renderJson(r: ResolvedConfig): string {
  const keys = Object.fromEntries(
    FIELD_NAMES.map((k) => [k, { key: `${FIELDS[k].section}.${FIELDS[k].key}`, source: describeSource(r, r.sources[k]), ...(r.sources[k].note === undefined ? {} : { note: r.sources[k].note }) }]),
  );
  const file = r.file ?? null;
  return JSON.stringify({ file, fileChoice: r.choice ?? null, config: r.config, keys, warnings: r.warnings }, null, 2) + '\n';
}
