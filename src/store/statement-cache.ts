/**
 * Prepared statements by SQL text, prepared once per connection. better-sqlite3's prepare
 * parses and plans the SQL every time (tens of microseconds); a lookup is a map hit.
 */
import type Database from 'better-sqlite3';

export type Sql = (text: string) => Database.Statement;

export function statementCache(db: Database.Database): Sql {
  const cache = new Map<string, Database.Statement>();
  return (text) => {
    let statement = cache.get(text);
    if (statement === undefined) {
      statement = db.prepare(text);
      cache.set(text, statement);
    }
    return statement;
  };
}
