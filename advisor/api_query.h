/* URL text into a request message for the HTTP gateway: %-decoding, path
 * parameters and the query string (api_query.c). Kept apart from
 * gateway.c's routing so the rules can be unit-tested without a server. */
#ifndef ADV_API_QUERY_H
#define ADV_API_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* %-decoding in place; '+' is a space when `plus` (query strings only).
 * -EINVAL on a bad escape or an encoded NUL. */
int adv_query_unescape(char *s, bool plus);

/* Sets the field `name` of `m` from text, as kopt_pbjson_set_field does;
 * `kind` also takes a Kubernetes kind ("Deployment", "statefulset"). 0,
 * -ENOENT (no such field), -EINVAL or -ENOMEM, with a sentence in `err`. */
int adv_query_set(ProtobufCMessage *m, const char *name, const char *value, char *err,
                  size_t errlen);

/* Sets fields of `m` from a query string ("a=1&b=x%20y"), decoded in place.
 * A field repeated in the proto takes every value given, in order. A
 * singular field given twice (under either spelling, "page_size" and
 * "pageSize") is never "last one wins": cluster, namespace, name and kind
 * of a request with a `filter` field (ListRecommendations) take every
 * value, the field left unset and "AND namespace = "a" OR namespace = "b""
 * added to the filter; any other is refused, and so is one of the `n_path`
 * fields the path already set. 0, or -EINVAL / -ENOMEM with a sentence in
 * `err` naming the parameter. */
int adv_query_params(ProtobufCMessage *m, char *query, char *const *path_names, int n_path,
                     char *err, size_t errlen);

#endif
