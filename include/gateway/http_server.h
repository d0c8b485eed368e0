/*
 * http_server.h - the data plane's dispatcher: requests for an endpoint
 * go to request.c, GET /v1/models is answered here, anything else gets an
 * error in the API's shape.
 */
#ifndef TOLLGATE_HTTP_SERVER_H
#define TOLLGATE_HTTP_SERVER_H

struct worker;

/* Installs the dispatcher on the worker's evhttp. */
void http_server_setup(struct worker *w);

#endif
