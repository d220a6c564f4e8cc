/* Replacement names keep script, word count and (heuristically) gender. */
#include "names.h"
#include "tap.h"

static pdp_name_status
name(const char *s, unsigned char b, char *out)
{
	unsigned char seed[8] = {b, 1, b, 2, b, 3, b, 4};

	return pdp_name_replace(s, strlen(s), seed, out);
}

static int
words(const char *s)
{
	int			n = 0,
				in = 0;

	for (; *s; s++)
	{
		if (*s != ' ' && !in)
			n++;
		in = *s != ' ';
	}
	return n;
}

static int
has_latin(const char *s)
{
	for (; *s; s++)
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
			return 1;
	return 0;
}

int
main(void)
{
	char		out[PDP_NAME_MAX_OUT];

	is_int(name("Айгерім Сәрсенова", 1, out), PDP_NAME_OK, "Cyrillic name");
	ok(!has_latin(out) && words(out) == 2, "Cyrillic in, two Cyrillic words out (%s)", out);
	ok(strstr(out, "а") != NULL, "female surname form kept (%s)", out);
	is_int(name("Nurlan Akhmetov", 2, out), PDP_NAME_OK, "Latin name");
	ok(has_latin(out) && words(out) == 2, "Latin in, Latin out (%s)", out);
	is_int(name("Иванов Иван Петрович", 3, out), PDP_NAME_OK, "three words (ФИО)");
	ok(words(out) == 3, "three words out (%s)", out);
	is_int(name("Дана", 4, out), PDP_NAME_OK, "one word");
	ok(words(out) == 1, "one word out (%s)", out);
	is_int(name("Jean-Luc O'Neil", 4, out), PDP_NAME_OK, "hyphen and apostrophe accepted");
	is_int(name("Айгерім Sarsenova", 1, out), PDP_NAME_OK, "mixed scripts get a pseudonym");
	ok(has_latin(out) && words(out) == 2, "mixed in, two Latin words out (%s)", out);
	is_int(name("王小明", 1, out), PDP_NAME_OK, "a Chinese name gets a pseudonym");
	ok(has_latin(out) && words(out) == 1, "Chinese in, one Latin word out (%s)", out);
	is_int(name("محمد علي", 1, out), PDP_NAME_OK, "an Arabic name gets a pseudonym");
	ok(has_latin(out) && words(out) == 2, "Arabic in, two Latin words out (%s)", out);
	is_int(name("Γιώργος Παπαδόπουλος", 1, out), PDP_NAME_OK, "a Greek name gets a pseudonym");
	ok(strstr(out, "王") == NULL && strstr(out, "Γ") == NULL, "no input letter copied (%s)", out);
	is_int(name("José Müller", 1, out), PDP_NAME_OK, "Latin with diacritics");
	is_int(name("12345", 1, out), PDP_NAME_BAD_CHAR, "digits refused");
	is_int(name("   ", 1, out), PDP_NAME_NO_LETTERS, "blank refused (the SQL functions pass blanks through first)");
	is_int(name("- '", 1, out), PDP_NAME_NO_LETTERS, "punctuation only refused");
	is_int(name("", 1, out), PDP_NAME_NO_LETTERS, "empty refused");
	is_int(name("a b c d e", 1, out), PDP_NAME_TOO_MANY_WORDS, "five words refused");
	is_int(name("Robert'); DROP TABLE users;--", 1, out), PDP_NAME_BAD_CHAR, "SQL-ish punctuation refused");
	{
		char		a[PDP_NAME_MAX_OUT],
					b[PDP_NAME_MAX_OUT];

		name("Ерлан Омаров", 9, a);
		name("Ерлан Омаров", 9, b);
		is_str(a, b, "the same seed gives the same name");
	}
	return done_testing();
}
