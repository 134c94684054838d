import { writeOut } from '../cli/stdio.js';
import { RuntimeCommand } from '../cli/base.js';
import { features } from '../oci/features.js';

export default class Features extends RuntimeCommand {
  static override description = 'show the enabled features (JSON, runc features format)';

  async run(): Promise<void> {
    const { flags } = await this.parse(Features);
    this.configureLog(flags);
    writeOut(JSON.stringify(features(), null, '    ') + '\n', true); // runc: json.Encoder, errors fail
  }
}
