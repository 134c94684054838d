import Check from './check.js';
import Create from './create.js';
import Delete from './delete.js';
import Env from './env.js';
import Events from './events.js';
import Exec from './exec.js';
import Features from './features.js';
import Help from './help.js';
import Kill from './kill.js';
import List from './list.js';
import Pause from './pause.js';
import Ps from './ps.js';
import Resume from './resume.js';
import Run from './run.js';
import Spec from './spec.js';
import Start from './start.js';
import State from './state.js';
import Update from './update.js';
import Version from './version.js';

/** Every verb, for oclif's explicit command discovery (no manifest, no directory scan at start-up). */
export const COMMANDS = {
  check: Check,
  create: Create,
  delete: Delete,
  env: Env,
  events: Events,
  exec: Exec,
  features: Features,
  help: Help,
  kill: Kill,
  list: List,
  pause: Pause,
  ps: Ps,
  resume: Resume,
  run: Run,
  spec: Spec,
  start: Start,
  state: State,
  update: Update,
  version: Version,
};
