/*
 * console_assets.c - the console's files, compiled in (console_assets.inc
 * is written by asset_gen at build time).
 */
#include <string.h>

#include "console_assets.h"
#include "src/gateway/console_assets.inc"

/* The asset served at path. */
const struct console_asset *
console_asset_find(const char *path)
{
	for (size_t i = 0; i < sizeof assets / sizeof *assets; i++)
		if (strcmp(assets[i].path, path) == 0)
			return &assets[i];
	return NULL;
}
