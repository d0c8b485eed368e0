/*
 * console_assets.h - the console's page, script and style sheet, compiled
 * into the daemon from data/console/ (asset_gen.c).
 */
#ifndef TOLLGATE_CONSOLE_ASSETS_H
#define TOLLGATE_CONSOLE_ASSETS_H

#include <stddef.h>

struct console_asset {
	const char *path; /* "/", "/console.js" */
	const char *type; /* Content-Type */
	const char *data;
	size_t len;
	const char *etag; /* quoted */
};

/* The asset served at path, or NULL. */
const struct console_asset *console_asset_find(const char *path);

#endif
