import { KataError } from '../errors.js';

export const STATUSES = ['creating', 'created', 'running', 'paused', 'stopped'] as const;
export type Status = (typeof STATUSES)[number];

/** Every allowed transition. Anything else is E_BAD_STATE. */
const TRANSITIONS: Readonly<Record<Status, readonly Status[]>> = {
  creating: ['created', 'stopped'],
  created: ['running', 'stopped'],
  running: ['paused', 'stopped'],
  paused: ['running', 'stopped'],
  stopped: [],
};

export function canTransition(from: Status, to: Status): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(from: Status, to: Status, id = ''): void {
  if (!canTransition(from, to)) {
    const who = id === '' ? 'container' : `container ${id}`;
    throw new KataError('E_BAD_STATE', `${who} is ${from}, cannot become ${to}`);
  }
}
