/*
 * A small fuzz target with no bug, for measuring `machvm fuzz`'s speed against
 * the same C under native libFuzzer: it parses "key=value;" pairs the way small
 * config parsers do, with a heap copy of the input (as most targets that want a
 * NUL-terminated string make) and a strdup per name. Stock C, libFuzzer's
 * entry point, two to a few allocations per input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct config {
	char *name;
	unsigned long size;
	int mode;
	int flags;
};

static void set(struct config *c, const char *key, const char *value)
{
	if (strcmp(key, "name") == 0) {
		free(c->name);
		c->name = strdup(value);
	} else if (strcmp(key, "size") == 0) {
		c->size = strtoul(value, NULL, 0);
	} else if (strcmp(key, "mode") == 0) {
		if (strcmp(value, "r") == 0)
			c->mode = 1;
		else if (strcmp(value, "w") == 0)
			c->mode = 2;
		else if (strcmp(value, "rw") == 0)
			c->mode = 3;
	} else if (key[0] == '+' && key[1] != '\0') {
		c->flags |= 1 << (key[1] & 7);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct config c = { 0 };
	char *save = NULL;
	for (char *pair = strtok_r(text, ";", &save); pair; pair = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(pair, '=');
		if (!eq)
			continue;
		*eq = '\0';
		set(&c, pair, eq + 1);
	}
	free(c.name);
	free(text);
	return 0;
}
