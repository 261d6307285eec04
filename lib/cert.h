/* lib/cert.h - the certificate `envpin check` writes (design.md section 8,
 * docs/certificate.md): which image, on which host, driver and GPUs, with
 * which libraries, passed which checks with which figures, and a numeric
 * fingerprint of the FITS smoke test's outputs that `verify --certify`
 * compares across machines within stated tolerances. */
#ifndef EP_CERT_H
#define EP_CERT_H

#include <jansson.h>

#include "error.h"
#include "store.h"

#define EP_CERT_VERSION 1
#define EP_CERT_MAX_BYTES (16u << 20)

struct ep_cert_inputs {
	const char *digest;        /* image manifest digest */
	const char *config_digest;
	const char *tag;           /* may be NULL */
	json_t *selfcheck;         /* envpin-selfcheck --json output, or NULL if it could not run */
	const char *selfcheck_error; /* why it could not run (NULL if it ran) */
	int selfcheck_status;      /* its exit status */
	json_t *fitsinfer;         /* envpin-fitsinfer --smoke --json output, or NULL */
	const char *fitsinfer_error;
	int fitsinfer_status;
	const char *gpus;          /* what was passed through: "none", "all", ... */
	const char *engine;
	int require_gpu;
	const json_t
	    *host_facts; /* ep_run_host_facts: driver, GPUs, driver files, runtime; may be NULL */
};

/* Builds the certificate (new reference).  "result" is "pass" when no check
 * failed (skips allowed) and, with require_gpu, every GPU check ran and
 * passed; else "fail" with "reasons". */
json_t *ep_cert_build(const struct ep_cert_inputs *in, struct ep_error *err);

/* Host facts for the certificate: kernel, OS, CPU, memory (new reference). */
json_t *ep_cert_host(void);

/* Compares two fingerprints field by field with the tolerances the
 * reference carries ({"abs","rel"}: |a-b| <= abs + rel*max(|a|,|b|);
 * "equal": same value; "informational": not compared).  Returns a new
 * JSON report {"match": bool, "fields": [{"name","reference","now",
 * "delta","allowed","ok"}]}. */
json_t *ep_cert_compare_fingerprints(json_t *reference, json_t *now, struct ep_error *err);

/* The certificate of an image kept in the store (STORE/certs/ALG-HEX.json)
 * by `check` and `run --certify`.  Load: 1 with *cert (new reference), 0
 * when there is none, -1 on error. */
int ep_cert_load_stored(struct ep_store *s, const char *digest, json_t **cert,
			struct ep_error *err);
int ep_cert_save_stored(struct ep_store *s, const char *digest, const json_t *cert,
			struct ep_error *err);

/* Whether cert (a stored certificate of digest) no longer holds on a host
 * whose facts (ep_run_host_facts) are `facts`: a failed one, another
 * driver version, other GPUs, changed driver files, another runtime or
 * envpin, a stronger require_gpu.  1 with *why set to the reason (caller
 * frees; NULL when out of memory), or 0 when it still holds. */
int ep_cert_stale(const json_t *cert, const char *digest, const json_t *facts, int require_gpu,
		  char **why);

#endif
