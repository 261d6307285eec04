/* cmd/trust.h - what verify, push and pull share with the trust commands
 * (cmd/sign.c, cmd/attach.c, cmd/provenance.c). */
#ifndef EP_CMD_TRUST_H
#define EP_CMD_TRUST_H

#include <getopt.h>
#include <jansson.h>

#include "cmd.h"
#include "registry.h"

struct ep_key;

/* Reads the passphrase from the first line of file (NULL: none).  *out is
 * malloc'ed (caller frees and clears it). */
int trust_read_passphrase(const char *file, char **out, struct ep_error *err);

/* --key KEY and --passphrase-file FILE as sign, attach-artifact and
 * provenance take them: TRUST_KEY_OPTIONS in the getopt_long table,
 * trust_key_opt in its loop, trust_key_load for the private key. */
enum { TRUST_O_KEY = 320, TRUST_O_PASS };
#define TRUST_KEY_OPTIONS                                                                          \
	{"key", required_argument, NULL, TRUST_O_KEY},                                             \
	{                                                                                          \
		"passphrase-file", required_argument, NULL, TRUST_O_PASS                           \
	}
struct trust_key_opts {
	const char *key;   /* --key: the private key's file */
	const char *pfile; /* --passphrase-file: its passphrase, first line */
};
/* 1 when c is --key or --passphrase-file (taken into *ko), else 0. */
int trust_key_opt(int c, const char *arg, struct trust_key_opts *ko);
/* The private key ko->key, decrypted with the passphrase of ko->pfile
 * (wiped from memory once used); NULL with *err filled.  ep_key_free it. */
struct ep_key *trust_key_load(const struct trust_key_opts *ko, struct ep_error *err);

/* verify --key/--policy: checks the signature of image digest (tag: its
 * store tag or NULL; identity: --identity or NULL) and returns a report
 * (*out new): {"verified", "key", "identity", "signatures"}. */
int trust_verify_signature(struct cmd_ctx *ctx, const char *digest, const char *tag,
			   const char *identity, const char *key_path, const char *policy,
			   json_t **out, struct ep_error *err);

/* push/pull: carries an image's signature and attachments to/from the
 * registry repository of ref.  *report (new, may be NULL) says what moved. */
int trust_push(struct cmd_ctx *ctx, const char *digest, const char *ref,
	       const struct ep_registry_opts *o, json_t **report, struct ep_error *err);
int trust_pull(struct cmd_ctx *ctx, const char *digest, const char *ref,
	       const struct ep_registry_opts *o, json_t **report, struct ep_error *err);

/* verify --certify --from-registry: the certificate attached to ref (an
 * image of the store, or a registry reference, pulled with its
 * attachments); a DSSE-signed one is verified with key (required then).
 * digest gets the image's digest, *cert the certificate (new). */
int trust_fetch_cert(struct cmd_ctx *ctx, const char *ref, const char *key,
		     const struct ep_registry_opts *o, ep_digest digest, json_t **cert,
		     struct ep_error *err);

#endif
