/* libFuzzer: IIN/BIN/Luhn validators and the discovery classifier. */
#include "checkdigit.h"
#include "classify.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *s = (const char *) data;

	if (pdp_iin_validate(s, size) == PDP_ID_OK)
	{
		int			y, m, d, sex;

		pdp_iin_fields(s, &y, &m, &d, &sex);
		if (y < 1800 || y > 2099 || m < 1 || m > 12 || d < 1 || d > 31 || (sex != 1 && sex != 2))
			abort();
		if (pdp_id_check_digit(s) != s[11] - '0')
			abort();
	}
	(void) pdp_bin_validate(s, size);
	(void) pdp_luhn_valid(s, size);
	(void) pdp_classify_value(s, size);
	if (size >= 11)
	{
		int			ok = 1;

		for (int i = 0; i < 11; i++)
			ok &= s[i] >= '0' && s[i] <= '9';
		if (ok)
		{
			int			c = pdp_id_check_digit(s);

			if (c < -1 || c > 9)
				abort();
		}
	}
	return 0;
}
