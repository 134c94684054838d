/**
 * The parts of the OCI runtime-spec config the runtime reads itself. The full document is kept as
 * JSON and passed on to the guest; these types describe only what the host interprets.
 */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface Namespace {
  type: string;
  path?: string;
}

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface Process {
  terminal?: boolean;
  rlimits?: Rlimit[];
  args?: string[];
  env?: string[];
  cwd: string;
  user?: { uid: number; gid: number };
  capabilities?: Partial<Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>>;
}

export interface Spec {
  ociVersion: string;
  process?: Process;
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  mounts?: Mount[];
  hooks?: Partial<Record<'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop', Hook[]>>;
  annotations?: Record<string, string>;
  linux?: {
    namespaces?: Namespace[];
    cgroupsPath?: string;
    resources?: Record<string, unknown>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}
