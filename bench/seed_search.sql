-- The search scenario's data: user 1 talks to users 2..101, 10,000 messages each: one
-- million messages, all in user 1's conversations (every one a candidate). Message n
-- (1..1,000,000, in order) reads like "<hi|so|well|ok|yes> note <n> about r<n % 100000>
-- and m<n % 1000> or c<n % 7>" plus 0–3 filler words, so each r-word is in 10 messages,
-- each m-word in 1,000 and each c-word in ~143,000. bench/seed_search_sqlite.sql is the
-- same data for SQLite. Bulk SQL: the index is kept by the database as for any insert.
INSERT INTO users (email, password_hash, display_name, created_at)
  SELECT 'search' || g || '@bench.example', 'x', 'search' || g, now() FROM generate_series(1, 101) g;
INSERT INTO conversations (kind, user_a, user_b, created_at, updated_at, last_seq, version)
  SELECT 'direct', 1, g, now(), now(), 10000, 10000 FROM generate_series(2, 101) g;
INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, delivered_seq, read_seq)
  SELECT c.id, u.uid, 'member', now(), 0, 0 FROM conversations c, LATERAL (VALUES (c.user_a), (c.user_b)) u(uid);
INSERT INTO messages (conversation_id, seq, sender_id, content, sent_at, created_at, version)
  SELECT c.id, s, CASE WHEN s % 2 = 0 THEN c.user_a ELSE c.user_b END,
    (ARRAY['hi', 'so', 'well', 'ok', 'yes'])[1 + x.n % 5] || ' note ' || x.n || ' about r' || (x.n % 100000)
      || ' and m' || (x.n % 1000) || ' or c' || (x.n % 7) || repeat(' blah', (x.n % 4)::int),
    now() - ((1000000 - x.n) || ' seconds')::interval, now(), s
  FROM conversations c, generate_series(1, 10000) s, LATERAL (SELECT (c.id - 1) * 10000 + s AS n) x;
VACUUM ANALYZE;
