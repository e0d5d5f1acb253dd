/* NATS server lists: every kopt component takes --nats-url as one URL or a
 * comma-separated list of a cluster's URLs. nats.c 3.4.1's
 * natsOptions_SetURL() does not connect with such a list ("No server
 * available for connection"; docs/stack-facts.md, "NATS: several URLs"), so
 * the list is split here and given to natsOptions_SetServers(), which tries
 * them in random order and reconnects across them. */
#ifndef KOPT_NATS_SERVERS_H
#define KOPT_NATS_SERVERS_H

#include <stddef.h>

#include <nats/nats.h>

#define KOPT_NATS_MAX_SERVERS 32

/* Splits `urls` at commas, trimming blanks around each entry. *out gets a
 * malloc'd array of *n malloc'd strings (kopt_nats_servers_free). 0, or
 * -EINVAL (NULL or no entry, an empty entry, an entry with a blank inside,
 * more than KOPT_NATS_MAX_SERVERS), -ENOMEM. */
int kopt_nats_servers_split(const char *urls, char ***out, size_t *n);
void kopt_nats_servers_free(char **list, size_t n);

/* natsOptions_SetServers() with the split list. NATS_INVALID_ARG for a list
 * kopt_nats_servers_split() refuses, NATS_NO_MEMORY. */
natsStatus kopt_nats_servers(natsOptions *o, const char *urls);

#endif
