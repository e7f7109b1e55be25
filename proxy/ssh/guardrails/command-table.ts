/**
 * What the command checker knows about commands: shells, interpreters and the options that give
 * them code, wrappers and their options, power-management verbs and targets, device paths. Data
 * only; the checker (rules.ts) reads it.
 */

export const SHELLS = new Set([
  'sh',
  'bash',
  'dash',
  'zsh',
  'ksh',
  'ash',
  'mksh',
  'yash',
  'fish',
  'rbash',
  'csh',
  'tcsh',
]);
/** Interpreters and the options that give them code inline. */
export const INTERPRETERS: Record<string, ReadonlySet<string>> = {
  python: new Set(['-c']),
  python2: new Set(['-c']),
  python3: new Set(['-c']),
  pypy: new Set(['-c']),
  pypy3: new Set(['-c']),
  perl: new Set(['-e', '-E']),
  ruby: new Set(['-e']),
  node: new Set(['-e', '--eval', '-p', '--print']),
  nodejs: new Set(['-e', '--eval', '-p', '--print']),
  deno: new Set(['eval']),
  bun: new Set(['-e', '--eval']),
  php: new Set(['-r']),
  lua: new Set(['-e']),
  tclsh: new Set([]),
  wish: new Set([]),
  expect: new Set(['-c']),
  Rscript: new Set(['-e']),
  pwsh: new Set(['-c', '-command', '-Command', '-EncodedCommand', '-e', '-ec']),
  powershell: new Set(['-c', '-command', '-Command', '-EncodedCommand', '-e', '-ec']),
  osascript: new Set(['-e']),
  jshell: new Set([]),
  irb: new Set([]),
  gdb: new Set(['-ex', '--eval-command']),
};
export const AWKS = new Set(['awk', 'gawk', 'mawk', 'nawk', 'busybox-awk']);
/** Commands that read commands to run from their input. */
export const STDIN_RUNNERS = new Set(['at', 'batch']);

export interface WrapperSpec {
  /** Options that take a value (short letters as `-u`, long as `--user`). */
  readonly values: ReadonlySet<string>;
  /** Positional arguments before the command (`timeout DURATION cmd`, `chroot DIR cmd`). */
  readonly positional?: number;
  /** An option whose value is a shell command (`su -c`, `runuser -c`, `flock -c`, `script -c`). */
  readonly script?: ReadonlySet<string>;
  /** All remaining arguments are joined into a shell command (`watch`). */
  readonly joinsScript?: boolean;
  /** Options after which the command runs through the target user's shell (`sudo -s`, `sudo -i`). */
  readonly viaShell?: ReadonlySet<string>;
  /** Takes no command (`su` without -c opens a shell). */
  readonly noCommand?: boolean;
  /** Appends arguments read from its input (`xargs`). */
  readonly appendsInput?: boolean;
}

const spec = (values: string[], extra: Partial<WrapperSpec> = {}): WrapperSpec => ({
  values: new Set(values),
  ...extra,
});

export const WRAPPERS: Record<string, WrapperSpec> = {
  sudo: spec(
    [
      '-u',
      '--user',
      '-g',
      '--group',
      '-C',
      '--close-from',
      '-D',
      '--chdir',
      '-h',
      '--host',
      '-p',
      '--prompt',
      '-r',
      '--role',
      '-t',
      '--type',
      '-U',
      '--other-user',
      '-T',
      '--command-timeout',
      '-R',
      '--chroot',
    ],
    {
      viaShell: new Set(['-s', '--shell', '-i', '--login']),
    },
  ),
  doas: spec(['-u', '-C'], { viaShell: new Set(['-s']) }),
  su: spec(['-s', '--shell', '-g', '--group', '-G', '--supp-group', '-w', '--whitelist-environment'], {
    script: new Set(['-c', '--command', '--session-command']),
    noCommand: true,
  }),
  runuser: spec(['-u', '--user', '-s', '--shell', '-g', '--group', '-G', '--supp-group', '-w'], {
    script: new Set(['-c', '--command', '--session-command']),
  }),
  pkexec: spec(['--user']),
  sg: spec([], { script: new Set(['-c']), positional: 1 }),
  env: spec(['-u', '--unset', '-C', '--chdir', '-S', '--split-string']),
  nice: spec(['-n', '--adjustment']),
  ionice: spec(['-c', '--class', '-n', '--classdata', '-p', '--pid', '-P', '--pgid', '-u', '--uid']),
  timeout: spec(['-s', '--signal', '-k', '--kill-after'], { positional: 1 }),
  stdbuf: spec(['-i', '--input', '-o', '--output', '-e', '--error']),
  chroot: spec(['--userspec', '--groups'], { positional: 1 }),
  nohup: spec([]),
  setsid: spec([]),
  exec: spec(['-a']),
  command: spec([]),
  builtin: spec([]),
  time: spec(['-f', '--format', '-o', '--output']),
  strace: spec(['-o', '-p', '-e', '-s', '-u', '-E', '-P', '-S', '-a', '-b', '-I', '-X']),
  ltrace: spec(['-o', '-p', '-e', '-s', '-u', '-n', '-a']),
  flock: spec(['-w', '--timeout', '-E', '--conflict-exit-code'], {
    script: new Set(['-c', '--command']),
    positional: 1,
  }),
  xargs: spec(
    [
      '-I',
      '-i',
      '-n',
      '--max-args',
      '-P',
      '--max-procs',
      '-d',
      '--delimiter',
      '-E',
      '-L',
      '-s',
      '-a',
      '--arg-file',
    ],
    {
      appendsInput: true,
    },
  ),
  watch: spec(['-n', '--interval', '-d', '--differences', '-q', '--equexit'], { joinsScript: true }),
  script: spec(
    ['-E', '--echo', '-O', '--log-out', '-I', '--log-in', '-T', '--log-timing', '-B', '--log-io', '-m'],
    {
      script: new Set(['-c', '--command']),
      noCommand: true,
    },
  ),
  unshare: spec([
    '-S',
    '--setuid',
    '-G',
    '--setgid',
    '-w',
    '--wd',
    '-R',
    '--root',
    '--map-user',
    '--map-group',
  ]),
  nsenter: spec(['-t', '--target', '-S', '--setuid', '-G', '--setgid', '-w', '--wd', '-r', '--root']),
  setpriv: spec([
    '--reuid',
    '--regid',
    '--groups',
    '--inh-caps',
    '--ambient-caps',
    '--bounding-set',
    '--securebits',
    '--selinux-label',
    '--apparmor-profile',
  ]),
  chrt: spec([], { positional: 1 }),
  taskset: spec([], { positional: 1 }),
  'systemd-run': spec([
    '-p',
    '--property',
    '-u',
    '--unit',
    '-M',
    '--machine',
    '-H',
    '--host',
    '--uid',
    '--gid',
    '--nice',
    '-E',
    '--setenv',
    '--working-directory',
    '--description',
    '--slice',
    '--on-calendar',
    '--on-active',
    '--timer-property',
  ]),
  busybox: spec([]),
  caffeinate: spec([]),
};

export const POWER_COMMANDS = new Set(['shutdown', 'reboot', 'halt', 'poweroff', 'kexec']);
export const POWER_VERBS = new Set([
  'reboot',
  'poweroff',
  'halt',
  'kexec',
  'suspend',
  'hibernate',
  'hybrid-sleep',
  'suspend-then-hibernate',
  'soft-reboot',
  'emergency',
  'rescue',
]);
export const POWER_TARGETS = new Set([
  'poweroff',
  'reboot',
  'halt',
  'kexec',
  'ctrl-alt-del',
  'rescue',
  'emergency',
  'shutdown',
  'soft-reboot',
  'suspend',
  'hibernate',
  'hybrid-sleep',
  'suspend-then-hibernate',
  'sleep',
  'final',
  'exit',
]);
export const UNIT_VERBS = new Set([
  'isolate',
  'start',
  'restart',
  'try-restart',
  'reload-or-restart',
  'try-reload-or-restart',
  'force-reload',
  'condrestart',
  'enable',
  'set-default',
]);
export const DEVICE =
  /^\/dev\/(sd|hd|vd|xvd|nvme|mmcblk|disk\/|dm-|md|mapper\/|loop|nbd|rbd|zd|mtd|sr|mem$|kmem$|port$)|^\/proc\/sysrq-trigger$/;
export const DEVICE_SAMPLES = [
  '/dev/sda',
  '/dev/nvme0n1',
  '/dev/vda',
  '/dev/xvda',
  '/dev/mmcblk0',
  '/dev/mapper/root',
  '/dev/disk/by-id/x',
  '/dev/md0',
  '/dev/dm-0',
  '/dev/mem',
  '/proc/sysrq-trigger',
];
export const ROOT_SAMPLES = ['/', '/.', '/*', '//'];
export const DEVICE_WRITERS = new Set([
  'tee',
  'shred',
  'wipefs',
  'blkdiscard',
  'cp',
  'mv',
  'install',
  'pv',
  'badblocks',
]);
export const FORK_BOMBS = [
  /(?:^|[\s;&|(])([^\s(){};&|]+)\s*\(\s*\)\s*\{[^}]*?\1\s*\|\s*\1\s*&/,
  /\bfunction\s+([^\s(){};&|]+)\s*(?:\(\s*\))?\s*\{[^}]*?\1\s*\|\s*\1\s*&/,
];
