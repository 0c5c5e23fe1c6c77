/**
 * YAML (and so JSON) text → value, for the config file and FLOW_FILTER_RULES. The `yaml` package
 * is loaded on the first call, not at start: most runs read neither, and it holds about 7 MB.
 */
import { createRequire } from 'node:module';

type YamlModule = typeof import('yaml');

let yaml: YamlModule | undefined;

/** The value `text` holds as YAML; throws the `yaml` package's error when it is not YAML. */
export function parseYamlText(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as YamlModule;
  return yaml.parse(text);
}
