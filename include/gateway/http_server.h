/*
 * http_server.h - the data plane's dispatcher: requests for an endpoint
 * go to request.c, GET /v1/models is answered here, anything else gets an
 * error in the API's shape.
 */
#ifndef TOLLGATE_HTTP_SERVER_H
#define TOLLGATE_HTTP_SERVER_H

struct evhttp;
struct request_loop;

/* Installs the dispatcher on an evhttp whose requests belong to loop. */
void http_server_setup(struct evhttp *http, struct request_loop *loop);

#endif
