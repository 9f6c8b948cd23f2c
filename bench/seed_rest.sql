-- The REST scenario's data: user 1 talks to users 2..1001, five messages each, and has a
-- 5,000-message conversation with user 2 (conversation 1). Every conversation's updated_at
-- is distinct, a second apart, conversation 1 the newest. bench/seed_rest_sqlite.sql is the
-- same data for SQLite.
INSERT INTO users (email, password_hash, display_name, created_at)
  SELECT 'rest' || g || '@bench.example', 'x', 'rest' || g, now() FROM generate_series(1, 1001) g;
INSERT INTO conversations (kind, user_a, user_b, created_at, updated_at, last_seq)
  SELECT 'direct', 1, g, now(), now() - (g || ' seconds')::interval, CASE WHEN g = 2 THEN 5000 ELSE 5 END
  FROM generate_series(2, 1001) g;
INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, delivered_seq, read_seq)
  SELECT c.id, u.uid, 'member', now(), 0, 0 FROM conversations c, LATERAL (VALUES (c.user_a), (c.user_b)) u(uid);
INSERT INTO messages (conversation_id, seq, sender_id, content, sent_at, created_at)
  SELECT c.id, s, CASE WHEN s % 2 = 0 THEN c.user_a ELSE c.user_b END, 'message ' || s, now(), now()
  FROM conversations c, LATERAL generate_series(1, c.last_seq) s;
UPDATE conversations c SET last_sender_id = m.sender_id, last_content = m.content, last_sent_at = m.sent_at
  FROM messages m WHERE m.conversation_id = c.id AND m.seq = c.last_seq;
-- Nothing read yet: unread is last_seq - read_seq - sent_since_read, the others' messages.
UPDATE conversation_members m SET has_written = true, sent_since_read =
  (SELECT count(*) FROM messages x WHERE x.conversation_id = m.conversation_id AND x.sender_id = m.user_id);
VACUUM ANALYZE;
