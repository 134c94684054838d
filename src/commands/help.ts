import { writeOut } from '../cli/stdio.js';
import { Args, Command, loadHelpClass } from '@oclif/core';

/** `kata-runtime help [VERB]` and `--help`: runc-style usage, every verb with its one-line description. */
export default class Help extends Command {
  static override description = 'show a list of commands or help for one command';
  static override strict = false;
  static override args = { verb: Args.string({ required: false, description: 'command to describe' }) };

  async run(): Promise<void> {
    const { args } = await this.parse(Help);
    if (args.verb !== undefined && args.verb !== '--') {
      if (this.config.findCommand(args.verb) === undefined) {
        process.stderr.write(`No help topic for '${args.verb}'\n`);
        process.exitCode = 3; // runc's (urfave/cli's) status for it
        return;
      }
      const HelpClass = await loadHelpClass(this.config);
      await new HelpClass(this.config).showHelp([args.verb]);
      return;
    }
    const verbs = this.config.commands.filter((c) => !c.hidden).sort((a, b) => a.id.localeCompare(b.id));
    const width = Math.max(...verbs.map((c) => c.id.length)) + 3;
    const lines = [
      'NAME:',
      '   kata-runtime - an OCI runtime with runc\'s command line; every container runs in its own VM',
      '',
      'USAGE:',
      '   kata-runtime [global options] command [command options] [arguments...]',
      '',
      'COMMANDS:',
      ...verbs.map((c) => `   ${c.id.padEnd(width)}${(c.summary ?? c.description ?? '').split('\n')[0] ?? ''}`),
      '',
      'GLOBAL OPTIONS:',
      '   --root value        root directory for storage of container state (default: "/run/kata")',
      '   --log value         set the log file to write runtime logs to',
      '   --log-format value  set the log format (text or json) (default: "text")',
      '   --debug             enable debug logging',
      '   --config value      configuration file (default: /etc/kata-containers/configuration.toml if present)',
      '   --systemd-cgroup    name the host cgroup as systemd would ("slice:prefix:name")',
      '   --help, -h          show help',
      '   --version, -v       print the version',
      '',
    ];
    writeOut(lines.join('\n'), false);
  }
}
