-- bench/seed_rest.sql's data for realtime-chat's SQLite database (run once the server has
-- created its tables): user 1 talks to users 2..1001, five messages each, and has a
-- 5,000-message conversation with user 2 (conversation 1). Timestamps are written as the
-- server writes them (RFC 3339, +00:00); every conversation's updated_at is distinct, a
-- second apart, conversation 1 the newest. No ANALYZE: the server never runs it, so a
-- running SQLite database has no statistics either.
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1001)
INSERT INTO users (email, password_hash, display_name, created_at)
  SELECT 'rest' || n || '@bench.example', 'x', 'rest' || n, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') FROM g;
WITH RECURSIVE g(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM g WHERE n < 1001)
INSERT INTO conversations (kind, user_a, user_b, created_at, updated_at, last_seq)
  SELECT 'direct', 1, n, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'),
    strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || n || ' seconds'), CASE WHEN n = 2 THEN 5000 ELSE 5 END
  FROM g;
INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, delivered_seq, read_seq)
  SELECT id, user_a, 'member', created_at, 0, 0 FROM conversations
  UNION ALL SELECT id, user_b, 'member', created_at, 0, 0 FROM conversations;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5000)
INSERT INTO messages (conversation_id, seq, sender_id, content, sent_at, created_at)
  SELECT c.id, s.n, CASE WHEN s.n % 2 = 0 THEN c.user_a ELSE c.user_b END, 'message ' || s.n,
    strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
  FROM conversations c JOIN s ON s.n <= c.last_seq
  ORDER BY c.id, s.n;
UPDATE conversations SET last_sender_id = m.sender_id, last_content = m.content, last_sent_at = m.sent_at
  FROM messages m WHERE m.conversation_id = conversations.id AND m.seq = conversations.last_seq;
-- Nothing read yet: unread is last_seq - read_seq - sent_since_read, the others' messages.
UPDATE conversation_members SET has_written = true, sent_since_read =
  (SELECT count(*) FROM messages x
   WHERE x.conversation_id = conversation_members.conversation_id AND x.sender_id = conversation_members.user_id);
