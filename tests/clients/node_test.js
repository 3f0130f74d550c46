// node-postgres (`pg`) against a sluice server (run by tests/it/server_clients.rs; `pg` is
// installed into tests/clients/node by .ci/install-deps.sh).
//
// Connects, creates a stream, inserts with parameters of several types, runs a historical
// SELECT with a parameter (unnamed and named prepared statements, array row mode), reads a
// streaming SELECT ended by LIMIT, and checks an error's SQLSTATE. Exits non-zero on failure.

'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const { Client } = require(path.join(__dirname, 'node', 'node_modules', 'pg'));

function port() {
  const i = process.argv.indexOf('--port');
  if (i < 0 || !process.argv[i + 1]) throw new Error('usage: node_test.js --port N');
  return Number(process.argv[i + 1]);
}

async function main() {
  const client = new Client({
    host: '127.0.0.1',
    port: port(),
    user: 'sluice',
    database: 'sluice',
    connectionTimeoutMillis: 10000,
    query_timeout: 20000,
  });
  await client.connect();
  try {
    await client.query(
      "CREATE STREAM js_events (id int64, v float64, name string, ok bool, at datetime64(3, 'UTC'), note nullable(string), small int32)",
    );
    const at = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
    const insert = 'INSERT INTO js_events (id, v, name, ok, at, note, small) VALUES ($1, $2, $3, $4, $5, $6, $7)';
    let r = await client.query(insert, [1, 1.5, "it's", true, at, null, 7]);
    assert.equal(r.rowCount, 1);
    await client.query(insert, ['2', -2.25, 'b', false, new Date(at.getTime() + 1000), 'n2', -1]);
    // A named prepared statement, run twice (parsed once).
    for (const [id, name] of [[3, 'ç'], [4, 'd']]) {
      await client.query({ name: 'ins', text: insert, values: [id, 1e10, name, true, at.toISOString(), null, 0] });
    }
    // BigInt-sized text, numbers as strings.
    await client.query(insert, ['9007199254740993', '0.5', 'big', 'true', '2024-01-02 03:04:05.678', null, '2']);

    // Historical SELECT with a parameter.
    r = await client.query(
      'SELECT id, v, name, ok, at, note, small FROM table(js_events) WHERE id >= $1 AND id < $2 ORDER BY id',
      [2, 100],
    );
    assert.deepEqual(r.fields.map((f) => f.name), ['id', 'v', 'name', 'ok', 'at', 'note', 'small']);
    assert.equal(r.rows.length, 3);
    const [row2, row3] = r.rows;
    assert.equal(row2.id, '2', 'int8 comes back as a string (node-postgres default)');
    assert.equal(row2.v, -2.25);
    assert.equal(row2.name, 'b');
    assert.equal(row2.ok, false);
    assert.equal(row2.at.getTime(), at.getTime() + 1000);
    assert.equal(row2.note, 'n2');
    assert.equal(row2.small, -1);
    assert.equal(row3.name, 'ç');
    assert.equal(row3.note, null);
    r = await client.query({ text: 'SELECT id FROM table(js_events) WHERE name = $1', values: ['big'], rowMode: 'array' });
    assert.deepEqual(r.rows, [['9007199254740993']]);
    r = await client.query('SELECT count(*) AS n FROM table(js_events) WHERE ok = $1', [true]);
    assert.equal(Number(r.rows[0].n), 4);

    // A streaming SELECT ended by LIMIT: the stored rows (seek_to earliest), then it stops.
    r = await client.query("SELECT id FROM js_events LIMIT 3 SETTINGS seek_to = 'earliest'");
    assert.equal(r.rows.length, 3);

    // Errors carry their SQLSTATE; the connection stays usable.
    await assert.rejects(client.query('SELECT nope FROM table(js_events)'), (e) => e.code === '42703');
    await assert.rejects(client.query('SELECT * FROM table(no_such)'), (e) => e.code === '42P01');
    await assert.rejects(client.query('SELEC 1'), (e) => e.code === '42601');
    await assert.rejects(client.query(insert, ['x', 1, 'a', true, at, null, 0]), (e) => /^22/.test(e.code));
    r = await client.query('SELECT count(*) AS n FROM table(js_events)');
    assert.equal(Number(r.rows[0].n), 5);
    // What GUI tools ask on connect.
    r = await client.query('SELECT version()');
    assert.match(r.rows[0].version, /sluice|PostgreSQL/);
    r = await client.query('SHOW server_version');
    assert.equal(r.rows.length, 1);
    console.log('node-postgres', require(path.join(__dirname, 'node', 'node_modules', 'pg', 'package.json')).version, 'ok');
  } finally {
    await client.end();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
