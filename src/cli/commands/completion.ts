import { ValidationError } from '../../errors.js';
import type { Command } from '../context.js';
import { parse, STORE_OPTION } from '../context.js';

const usage = 'swf completion bash|zsh';

/** The completion script: command names, then each command's subcommands and options (from their declarations). */
export function completionScript(commands: readonly Command[], shell: 'bash' | 'zsh'): string {
  const names = [...commands.map((c) => c.name), 'help'];
  const cases = commands.map((c) => {
    // The declared options, and those the usage names that a command takes before parsing (`--inspect [URL]`).
    const flags = [
      '--help',
      '--log-format',
      ...Object.keys(c.options ?? {}).map((o) => `--${o}`),
      ...(c.usage.match(/--[a-z][a-z-]*/g) ?? []),
    ];
    if (c.name !== 'machines' && !flags.includes('--store')) flags.push('--store');
    const subs = (c.subcommands ?? []).join(' ');
    return `    ${c.name}) opts="${[...new Set(flags)].sort().join(' ')}"; subs="${subs}" ;;`;
  });
  return [
    '# swf shell completion: commands, subcommands and options.',
    `# Load it with: source <(swf completion ${shell})   (or save it where your shell reads completions)`,
    ...(shell === 'zsh' ? ['autoload -U +X compinit && compinit', 'autoload -U +X bashcompinit && bashcompinit'] : []),
    '_swf() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" opts="" subs=""',
    '  if [ "$COMP_CWORD" -eq 1 ]; then',
    `    COMPREPLY=( $(compgen -W "${names.join(' ')} --help --version" -- "$cur") )`,
    '    return 0',
    '  fi',
    '  case "${COMP_WORDS[1]}" in',
    ...cases,
    `    help) subs="${names.join(' ')}" ;;`,
    '  esac',
    '  case "$prev" in',
    '    --log-format) COMPREPLY=( $(compgen -W "json pretty" -- "$cur") ); return 0 ;;',
    '    --format) COMPREPLY=( $(compgen -W "json ts mermaid" -- "$cur") ); return 0 ;;',
    '  esac',
    '  if [[ "$cur" == -* ]]; then',
    '    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )',
    '  elif [ "$COMP_CWORD" -eq 2 ] && [ -n "$subs" ]; then',
    '    COMPREPLY=( $(compgen -W "$subs" -- "$cur") )',
    '  else',
    '    COMPREPLY=( $(compgen -f -- "$cur") )',
    '  fi',
    '}',
    'complete -F _swf swf',
    '',
  ].join('\n');
}

/** `swf completion bash|zsh` (commander gives no completion of its own). `commands` is read when it runs. */
export function completionCommand(commands: () => readonly Command[]): Command {
  return {
    name: 'completion',
    summary: 'print a bash or zsh completion script for swf (source <(swf completion bash))',
    usage,
    options: STORE_OPTION,
    subcommands: ['bash', 'zsh'],
    run(argv, io) {
      // --store is accepted, as by every command, and not used.
      const { values, positionals } = parse(argv, STORE_OPTION, usage);
      if (values.help) {
        io.stdout.write(
          `${usage}\n\nPrints a completion script for commands, subcommands and options. Load it in the shell:\n` +
            '  source <(swf completion bash)      # bash; add the line to ~/.bashrc to keep it\n' +
            '  source <(swf completion zsh)       # zsh; add the line to ~/.zshrc to keep it\n',
        );
        return Promise.resolve(0);
      }
      const shell = positionals[0];
      if ((shell !== 'bash' && shell !== 'zsh') || positionals.length > 1)
        throw new ValidationError(`name one shell, bash or zsh; usage: ${usage}`);
      io.stdout.write(completionScript(commands(), shell));
      return Promise.resolve(0);
    },
  };
}
