import Create from './create.js';
import Delete from './delete.js';
import Kill from './kill.js';
import List from './list.js';
import Run from './run.js';
import Start from './start.js';
import State from './state.js';
import Version from './version.js';

/** Every verb, for oclif's explicit command discovery (no manifest, no directory scan at start-up). */
export const COMMANDS = {
  create: Create,
  delete: Delete,
  kill: Kill,
  list: List,
  run: Run,
  start: Start,
  state: State,
  version: Version,
};
