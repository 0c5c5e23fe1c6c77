/**
 * `flowtap completion bash|zsh`: a shell completion script for the commands and flags this build
 * has, made from the command line's own definition, so it never lists a flag that does not exist.
 *   source <(flowtap completion bash)      # or save it to /etc/bash_completion.d/flowtap
 *   source <(flowtap completion zsh)       # after compinit
 */
import type { Command } from 'commander';
import { ConfigError } from '../../errors.ts';

/** Shells a script is made for. */
export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;

/** Each command's name and long flags (`--help` too); the default command `run` first. */
export function completionWords(program: Command): { name: string; flags: string[] }[] {
  return program.commands.map((command) => ({
    name: command.name(),
    flags: [...command.options.map((o) => o.long).filter((f): f is string => f !== undefined), '--help'],
  }));
}

function bashScript(program: Command): string {
  const commands = completionWords(program);
  const cases = commands.map((c) => `    ${c.name}) words="${c.flags.join(' ')}" ;;`).join('\n');
  const run = commands.find((c) => c.name === 'run');
  return `# flowtap completion for bash: source <(flowtap completion bash)
_flowtap() {
  local cur=\${COMP_WORDS[COMP_CWORD]} command="" words i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in -*) ;; *) command=\${COMP_WORDS[i]}; break ;; esac
  done
  case $command in
${cases}
    *) words="${commands.map((c) => c.name).join(' ')} --help --version ${run?.flags.join(' ') ?? ''}" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _flowtap flowtap
`;
}

function zshScript(program: Command): string {
  const commands = completionWords(program);
  const cases = commands.map((c) => `    ${c.name}) compadd -- ${c.flags.join(' ')} ;;`).join('\n');
  const run = commands.find((c) => c.name === 'run');
  return `#compdef flowtap
# flowtap completion for zsh: source <(flowtap completion zsh), after compinit
_flowtap() {
  local command=\${words[2]}
  if (( CURRENT == 2 )); then
    compadd -- ${commands.map((c) => c.name).join(' ')} --help --version ${run?.flags.join(' ') ?? ''}
    return
  fi
  case $command in
${cases}
  esac
  _files
}
compdef _flowtap flowtap
`;
}

/** Registers `flowtap completion`; call after every other command is registered. */
export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(flowtap completion bash)')
    .argument('<shell>', COMPLETION_SHELLS.join(' or '))
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashScript(program));
      else if (shell === 'zsh') process.stdout.write(zshScript(program));
      else throw new ConfigError('completion shell', shell, COMPLETION_SHELLS.join(' or '));
    });
}
