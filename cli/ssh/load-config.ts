/** The configuration file the offline `warden ssh` verbs read. */
import { type Config, loadConfig } from '../../broker/config/load.ts';
import type { Io } from '../output.ts';

/** The configuration named by `--config`, else `WARDEN_CONFIG`, else `./warden.yaml`. */
export function loadConfigOf(flags: Record<string, string | boolean | undefined>, io: Io): Config {
  return loadConfig(
    typeof flags.config === 'string' ? flags.config : (io.env.WARDEN_CONFIG ?? 'warden.yaml'),
  );
}
