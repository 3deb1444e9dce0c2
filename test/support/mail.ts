/** Reading the mails a venue sent: its outbox folder's .eml files, or raw messages an SMTP server received. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ReadMail { to: string; from: string; subject: string; text: string; file?: string }

/** Headers and the plain-text body of one RFC 5322 message (quoted-printable or 7/8-bit, as nodemailer writes). */
export function parseMail(raw: string): ReadMail {
  const normalized = raw.replaceAll('\r\n', '\n');
  const split = normalized.indexOf('\n\n');
  const head = normalized.slice(0, split).replace(/\n[ \t]+/g, ' ');
  const header = (name: string): string => head.split('\n').find((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim() ?? '';
  let body = normalized.slice(split + 2);
  if (header('Content-Transfer-Encoding').toLowerCase() === 'quoted-printable') {
    const bytes = body.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    body = Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return { to: header('To'), from: header('From'), subject: header('Subject'), text: body };
}

/** The outbox's mails in the order sent; waits (up to 5 s) until there are at least `count`. */
export async function outbox(dataDir: string, count: number): Promise<ReadMail[]> {
  const dir = join(dataDir, 'outbox');
  const deadline = Date.now() + 5_000;
  for (;;) {
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.eml')).sort() : [];
    if (files.length >= count || Date.now() > deadline) {
      return files.map((file) => ({ ...parseMail(readFileSync(join(dir, file), 'utf8')), file: join(dir, file) }));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The 64-hex-digit code a confirmation or reset mail carries (as a code or in a link). */
export function codeIn(mail: ReadMail): string {
  const match = /(?:Your code: |token=)([0-9a-f]{64})/.exec(mail.text);
  if (match === null) throw new Error(`no code in: ${mail.text}`);
  return match[1]!;
}
