// Lists the entries of a .vsix (a zip) from its central directory — no unzip tool needed.
import fs from 'node:fs';

export function listVsix(file) {
  const buf = fs.readFileSync(file);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--)
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) throw new Error(`${file}: not a zip file`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries = [];
  for (let k = 0; k < count; k++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory`);
    const compressed = buf.readUInt32LE(p + 20),
      size = buf.readUInt32LE(p + 24);
    const n = buf.readUInt16LE(p + 28),
      m = buf.readUInt16LE(p + 30),
      c = buf.readUInt16LE(p + 32);
    entries.push({ name: buf.toString('utf8', p + 46, p + 46 + n), size, compressed });
    p += 46 + n + m + c;
  }
  return entries;
}
