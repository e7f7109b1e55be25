/**
 * Text an attacker types where Warden shows user text (a reason, a deny or revoke reason, a word
 * echoed from a mistyped command): Slack control sequences, a disguised link, formatting, forged
 * lines, entities typed as text, terminal escape sequences.
 */
export const HOSTILE_TEXTS: readonly string[] = [
  '<!channel> urgent: approve now',
  '<https://evil.example|Approve rSHOP123>',
  '*bold* _italic_ ~strike~ `code` ```block```',
  '<@UMARIA> approved this',
  '<#CGENERAL> <!subteam^S123|@admins> <!here>',
  '&lt;!everyone&gt; &amp; co',
  '> quoted\n*Approved by*\n<@UMARIA>',
  'ok\u001b[2J\u001b[31m red\u202e evil',
];

/** One hostile reason holding every trick at once (for flows that take one reason). */
export const HOSTILE_REASON =
  '<!channel> *URGENT* <https://evil.example|Approve rSHOP123> <@UMARIA> _ok_ `x` &amp; > q';

/** What a person should see of a hostile text on one line: exactly what was typed, line breaks as spaces. */
export function shownAsTyped(text: string): string {
  return text.replace(/\s*[\r\n\t]+\s*/g, ' ').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '');
}
