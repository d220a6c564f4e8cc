/*-------------------------------------------------------------------------
 * names.c
 *	  Replacement names (see names.h).  The lists are common Kazakh and
 *	  Russian names; every entry has a Cyrillic and a Latin spelling at the
 *	  same index, the Latin one in Kazakhstan's 2021 Latin alphabet style
 *	  simplified to ASCII.
 *-------------------------------------------------------------------------
 */
#include "names.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const male_cyr[] = {
	"Нұрлан", "Ерлан", "Тимур", "Асқар", "Дәурен", "Бауыржан", "Ержан", "Мұрат",
	"Серік", "Арман", "Қанат", "Ғалым", "Айдос", "Нұрсұлтан", "Әлихан", "Данияр",
	"Иван", "Алексей", "Дмитрий", "Сергей", "Андрей", "Максим", "Артём", "Михаил",
	"Олжас", "Жандос", "Ислам", "Руслан", "Бекзат", "Ақылбек", "Санжар", "Әділ"};
static const char *const male_lat[] = {
	"Nurlan", "Erlan", "Timur", "Asqar", "Dauren", "Bauyrzhan", "Erzhan", "Murat",
	"Serik", "Arman", "Qanat", "Galym", "Aidos", "Nursultan", "Alikhan", "Daniiar",
	"Ivan", "Aleksei", "Dmitrii", "Sergei", "Andrei", "Maksim", "Artem", "Mikhail",
	"Olzhas", "Zhandos", "Islam", "Ruslan", "Bekzat", "Aqylbek", "Sanzhar", "Adil"};
static const char *const female_cyr[] = {
	"Айгерім", "Әлия", "Дана", "Асель", "Жанна", "Гүлнар", "Меруерт", "Аружан",
	"Динара", "Камила", "Салтанат", "Томирис", "Іңкәр", "Жансая", "Аяулым", "Балжан",
	"Мария", "Анна", "Елена", "Ольга", "Наталья", "Татьяна", "Екатерина", "Ирина",
	"Мадина", "Ақерке", "Назерке", "Сабина", "Айым", "Әсем", "Дильназ", "Гаухар"};
static const char *const female_lat[] = {
	"Aigerim", "Aliia", "Dana", "Asel", "Zhanna", "Gulnar", "Meruert", "Aruzhan",
	"Dinara", "Kamila", "Saltanat", "Tomiris", "Inkar", "Zhansaia", "Aiaulym", "Balzhan",
	"Mariia", "Anna", "Elena", "Olga", "Natalia", "Tatiana", "Ekaterina", "Irina",
	"Madina", "Aqerke", "Nazerke", "Sabina", "Aiym", "Asem", "Dilnaz", "Gaukhar"};
/* Surnames in the male form; the female form adds "а" / "a". */
static const char *const surname_cyr[] = {
	"Ахметов", "Сәрсенов", "Жақсылықов", "Нұрланов", "Омаров", "Серікбаев", "Тоқаев", "Әбішев",
	"Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Морозов", "Волков",
	"Құсайынов", "Бекмұхамбетов", "Исаев", "Қасымов", "Жұмабаев", "Мұхамеджанов", "Төлегенов", "Байжанов",
	"Ермеков", "Оспанов", "Кенжебаев", "Сұлтанов", "Әлиев", "Рахимов", "Қалиев", "Есенов"};
static const char *const surname_lat[] = {
	"Akhmetov", "Sarsenov", "Zhaqsylyqov", "Nurlanov", "Omarov", "Serikbaev", "Toqaev", "Abishev",
	"Ivanov", "Petrov", "Smirnov", "Kuznetsov", "Popov", "Sokolov", "Morozov", "Volkov",
	"Qusaiynov", "Bekmukhambetov", "Isaev", "Qasymov", "Zhumabaev", "Mukhamedzhanov", "Tolegenov", "Baizhanov",
	"Ermekov", "Ospanov", "Kenzhebaev", "Sultanov", "Aliev", "Rakhimov", "Qaliev", "Esenov"};

#define NNAMES 32

/* Does s[0..len) end with suffix (bytes)? */
static bool
ends_with(const char *s, size_t len, const char *suffix)
{
	size_t		n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool
word_is_female(const char *w, size_t len)
{
	static const char *const female_suffixes[] = {
		"ова", "ева", "ина", "ая", "қызы", "кызы", "овна", "евна", "ична",
		"ova", "eva", "ina", "aia", "qyzy", "kyzy", "ovna", "evna", "ichna"};

	for (size_t i = 0; i < sizeof(female_suffixes) / sizeof(female_suffixes[0]); i++)
		if (ends_with(w, len, female_suffixes[i]))
			return true;
	return false;
}

pdp_name_status
pdp_name_replace(const char *s, size_t len, const unsigned char seed[8], char *out)
{
	bool		cyrillic = false,
				latin = false,
				other = false,
				female = false;
	size_t		words = 0,
				first_word_len = 0;
	size_t		start = 0;
	const char *first_word = NULL;
	int			pick[4];
	const char *const *given;
	const char *const *surname;
	const char *fem_ending;
	const char *patronymic_suffix;

	/* Classify characters and split into words. */
	for (size_t i = 0; i <= len; i++)
	{
		unsigned char c = i < len ? (unsigned char) s[i] : ' ';

		if (c == ' ' || c == '\t')
		{
			if (i > start)
			{
				if (words == 0)
				{
					first_word = s + start;
					first_word_len = i - start;
				}
				if (word_is_female(s + start, i - start))
					female = true;
				words++;
			}
			start = i + 1;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			latin = true;
		else if (c >= 0xD0 && c <= 0xD4)	/* lead bytes of U+0400..U+052F */
			cyrillic = true;
		else if (c >= 0xC0)
			other = true;		/* lead byte of a letter in another script */
		else if (c >= 0x80)
			;					/* continuation bytes */
		else if (c != '-' && c != '\'' && c != '.')
			return PDP_NAME_BAD_CHAR;
	}
	if (!cyrillic && !latin && !other)
		return PDP_NAME_NO_LETTERS;
	/*
	 * The replacement is Cyrillic for a name written in Cyrillic only, and
	 * Latin for everything else: Latin, other scripts (Chinese, Arabic,
	 * Greek, ...), and names mixing scripts.
	 */
	if (latin || other)
		cyrillic = false;
	if (words > 4)
		return PDP_NAME_TOO_MANY_WORDS;
	/* A lone or leading given name ending in -а / -a / -я reads as female. */
	if (!female && first_word != NULL &&
		(ends_with(first_word, first_word_len, "а") || ends_with(first_word, first_word_len, "я") ||
		 ends_with(first_word, first_word_len, "a")))
		female = true;

	for (int i = 0; i < 4; i++)
		pick[i] = ((seed[2 * i] << 8) | seed[2 * i + 1]) % NNAMES;
	given = cyrillic ? (female ? female_cyr : male_cyr) : (female ? female_lat : male_lat);
	surname = cyrillic ? surname_cyr : surname_lat;
	fem_ending = female ? (cyrillic ? "а" : "a") : "";
	patronymic_suffix = cyrillic ? (female ? "қызы" : "ұлы") : (female ? "qyzy" : "uly");

	if (words == 1)
		snprintf(out, PDP_NAME_MAX_OUT, "%s", given[pick[0]]);
	else if (words == 2)
		snprintf(out, PDP_NAME_MAX_OUT, "%s %s%s", given[pick[0]], surname[pick[1]], fem_ending);
	else
	{
		/* Kazakh patronymics are the father's name with -ұлы / -қызы. */
		const char *father = cyrillic ? male_cyr[pick[2]] : male_lat[pick[2]];

		snprintf(out, PDP_NAME_MAX_OUT, "%s%s %s %s%s", surname[pick[1]], fem_ending,
				 given[pick[0]], father, patronymic_suffix);
	}
	return PDP_NAME_OK;
}

const char *
pdp_name_status_message(pdp_name_status status)
{
	switch (status)
	{
		case PDP_NAME_OK:
			return "The name is usable.";
		case PDP_NAME_NO_LETTERS:
			return "A name needs at least one letter.";
		case PDP_NAME_TOO_MANY_WORDS:
			return "A name may have at most four words.";
		case PDP_NAME_BAD_CHAR:
			return "A name may hold only letters, spaces, hyphens, apostrophes and dots.";
	}
	return "The name is unusable.";
}
