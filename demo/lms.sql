-- A small sample LMS: generated learners (no real persons), courses,
-- enrolments, grades, payments, forum posts and an activity log.
-- Deterministic: setseed() makes every run produce the same data.
\set ON_ERROR_STOP on
SELECT setseed(0.42);

CREATE SCHEMA lms;

-- IIN check digit (Kazakhstan): weights 1..11, then 3..11,1,2 if the first
-- pass gives 10; NULL when neither pass gives a digit.
CREATE FUNCTION lms.iin_check_digit(d text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
  WITH w AS (
    SELECT sum(substr(d, i, 1)::int * i) % 11 AS s1,
           sum(substr(d, i, 1)::int * ((i + 1) % 11 + 1)) % 11 AS s2
      FROM generate_series(1, 11) i)
  SELECT CASE WHEN s1 < 10 THEN s1 WHEN s2 < 10 THEN s2 END FROM w $$;

-- Luhn check digit for a card number prefix.
CREATE FUNCTION lms.luhn_digit(prefix text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
  SELECT (10 - sum(CASE WHEN i % 2 = 1 THEN (2 * d) / 10 + (2 * d) % 10 ELSE d END) % 10) % 10
    FROM (SELECT i, substr(reverse(prefix), i, 1)::int AS d FROM generate_series(1, length(prefix)) i) x $$;

CREATE TABLE lms.users (
    id           bigint PRIMARY KEY,
    full_name    text NOT NULL,
    email        text NOT NULL UNIQUE,
    phone        text,
    iin          text,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz
);
CREATE TABLE lms.courses (id int PRIMARY KEY, title text NOT NULL);
CREATE TABLE lms.enrolments (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES lms.users(id),
    course_id   int NOT NULL REFERENCES lms.courses(id),
    enrolled_at timestamptz NOT NULL
);
CREATE TABLE lms.grades (
    id            bigserial PRIMARY KEY,
    enrolment_id  bigint REFERENCES lms.enrolments(id),
    user_id       bigint,
    grade         int NOT NULL,
    graded_at     timestamptz NOT NULL
);
CREATE TABLE lms.payments (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES lms.users(id),
    card_number text,
    amount_kzt  numeric(12, 2) NOT NULL,
    paid_at     timestamptz NOT NULL
);
CREATE TABLE lms.forum_posts (
    id        bigserial PRIMARY KEY,
    author_id bigint REFERENCES lms.users(id),
    body      text NOT NULL,
    posted_at timestamptz NOT NULL
);
CREATE TABLE lms.activity_log (
    id               bigserial PRIMARY KEY,
    actor_id         bigint NOT NULL,
    affected_user_id bigint,
    action           text NOT NULL,
    ip               inet,
    at               timestamptz NOT NULL
);

INSERT INTO lms.courses
SELECT i, (ARRAY['Python негіздері', 'Основы SQL', 'Data Science', 'Қазақ тілі', 'English B2',
                 'Web development', 'Математика', 'Project management'])[i]
  FROM generate_series(1, 8) i;

-- 3,000 learners with names from small Kazakh and Russian lists.
INSERT INTO lms.users
SELECT i,
       (ARRAY['Айгерім', 'Нұрлан', 'Әлия', 'Ерлан', 'Дана', 'Асель', 'Тимур', 'Мария', 'Иван', 'Жанна'])[1 + (i * 7) % 10]
         || ' ' ||
       (ARRAY['Сәрсенова', 'Жақсылықов', 'Иванова', 'Петров', 'Нұрланова', 'Ахметов', 'Омарова', 'Смирнов'])[1 + (i * 13) % 8],
       'learner' || i || '@example.kz',
       '+7 7' || lpad(((i * 7919) % 100)::text, 2, '0') || ' ' || lpad(((i * 104729) % 1000)::text, 3, '0')
         || ' ' || lpad((i % 100)::text, 2, '0') || ' ' || lpad(((i * 31) % 100)::text, 2, '0'),
       NULL,
       now() - (i % 1500) * interval '1 day',
       now() - (i % 1400) * interval '1 day'
  FROM generate_series(1, 3000) i;

-- Valid IINs: birth date, century/sex digit, serial, check digit.
UPDATE lms.users u SET iin = x.base || lms.iin_check_digit(x.base)
  FROM (SELECT id, to_char(date '1985-01-01' + (id * 37 % 9000)::int, 'YYMMDD')
                   || (CASE WHEN to_char(date '1985-01-01' + (id * 37 % 9000)::int, 'YYYY') < '2000'
                            THEN 3 + id % 2 ELSE 5 + id % 2 END)::text
                   || lpad((id % 10000)::text, 4, '0') AS base
          FROM lms.users) x
 WHERE x.id = u.id AND lms.iin_check_digit(x.base) IS NOT NULL;

INSERT INTO lms.enrolments (user_id, course_id, enrolled_at)
SELECT u.id, 1 + (u.id + c) % 8, u.created_at + c * interval '3 days'
  FROM lms.users u, generate_series(0, 2) c;
INSERT INTO lms.grades (enrolment_id, user_id, grade, graded_at)
SELECT e.id, e.user_id, 40 + (e.id * 17) % 61, e.enrolled_at + interval '30 days'
  FROM lms.enrolments e WHERE e.id % 2 = 0;
INSERT INTO lms.payments (user_id, card_number, amount_kzt, paid_at)
SELECT u.id, p || lms.luhn_digit(p), 15000 + (u.id % 5) * 5000, u.created_at
  FROM lms.users u, LATERAL (SELECT '440043' || lpad((u.id * 9973 % 1000000000)::text, 9, '0') AS p) card
 WHERE u.id % 3 = 0;
INSERT INTO lms.forum_posts (author_id, body, posted_at)
SELECT 1 + (i * 7) % 3000, 'Сабақ туралы сұрақ #' || i, now() - (i % 900) * interval '1 day'
  FROM generate_series(1, 2000) i;
INSERT INTO lms.activity_log (actor_id, affected_user_id, action, ip, at)
SELECT 1 + (i * 11) % 3000,
       CASE WHEN i % 10 = 0 THEN 1 + (i * 3) % 3000 END,
       (ARRAY['login', 'view_lesson', 'submit_quiz', 'post', 'grade'])[1 + i % 5],
       ('10.' || (i % 250) || '.' || (i * 7 % 250) || '.' || (i * 13 % 250))::inet,
       now() - (i % 1200) * interval '1 day'
  FROM generate_series(1, 20000) i;
ANALYZE;
