-- bench/seed_search.sql's data for realtime-chat's SQLite database (run once the server
-- has created its tables; the messages are indexed for search at the end, in bulk, as
-- the server's indexer would in batches):
-- user 1 talks to users 2..101, 10,000 messages each, one million in all.
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 101)
INSERT INTO users (email, password_hash, display_name, created_at)
  SELECT 'search' || n || '@bench.example', 'x', 'search' || n, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') FROM g;
WITH RECURSIVE g(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM g WHERE n < 101)
INSERT INTO conversations (kind, user_a, user_b, created_at, updated_at, last_seq, version)
  SELECT 'direct', 1, n, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'),
    10000, 10000 FROM g;
INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, delivered_seq, read_seq)
  SELECT id, user_a, 'member', created_at, 0, 0 FROM conversations
  UNION ALL SELECT id, user_b, 'member', created_at, 0, 0 FROM conversations;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 10000)
INSERT INTO messages (conversation_id, seq, sender_id, content, sent_at, created_at, version)
  SELECT conversation_id, seq, sender_id,
    CASE n % 5 WHEN 0 THEN 'hi' WHEN 1 THEN 'so' WHEN 2 THEN 'well' WHEN 3 THEN 'ok' ELSE 'yes' END
      || ' note ' || n || ' about r' || (n % 100000) || ' and m' || (n % 1000) || ' or c' || (n % 7)
      || substr(' blah blah blah', 1, 5 * (n % 4)),
    strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || (1000000 - n) || ' seconds'),
    strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), seq
  FROM (SELECT c.id AS conversation_id, s.n AS seq, CASE WHEN s.n % 2 = 0 THEN c.user_a ELSE c.user_b END AS sender_id,
               (c.id - 1) * 10000 + s.n AS n
        FROM conversations c JOIN s ORDER BY c.id, s.n);
BEGIN IMMEDIATE;
INSERT INTO messages_fts (rowid, content) SELECT id, content FROM messages
  WHERE id > (SELECT indexed_through FROM search_progress);
UPDATE search_progress SET indexed_through = (SELECT MAX(id) FROM messages);
COMMIT;
