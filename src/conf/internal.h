/* Internals shared by the conf sources: the raw key table, value types (parse / render / free), the
 * loader state that collects errors and warnings, and the stages load runs through
 * (defaults -> YAML -> environment -> resolve -> validate). Never included outside src/conf. */
#ifndef TANDEM_CONF_INTERNAL_H
#define TANDEM_CONF_INTERNAL_H

#include <stdarg.h>
#include <tandem/conf/conf.h>

#define TDM__CONF_MAX_ERRORS 50   /* a load stops collecting errors after this many */
#define TDM__CONF_WHY_MAX    256  /* room for the reason a value was refused */
#define TDM__CONF_QUOTE_MAX  64   /* longest excerpt of a bad value quoted in a message */

/* The key table (conf_keys.c). */
extern const tdm_conf_key_t tdm__conf_keys[];
extern const size_t tdm__conf_nkeys;

/* One scalar of a value: a YAML scalar, one YAML sequence item, or an environment variable's text. */
typedef struct tdm__conf_item_s {
  const char *text; /* bytes, NUL-terminated at text[len] */
  size_t len;       /* byte count (may differ from strlen when the YAML held "\0") */
  uint32_t line;    /* 1-based position for messages, 0 when not from the file */
  uint32_t col;     /* 1-based column */
} tdm__conf_item_t;

typedef struct tdm__conf_value_s {
  const tdm__conf_item_t *items; /* one for a scalar, any number for a YAML sequence */
  size_t n;                      /* number of items */
  bool is_seq;                   /* came from a YAML sequence (only list types accept one) */
} tdm__conf_value_t;

/* Growable text buffer (conf_text.c); a failed allocation sets `oom` and later appends do nothing. */
typedef struct tdm__conf_sb_s {
  char *buf;  /* NUL-terminated text, NULL until the first append */
  size_t len; /* text length */
  size_t cap; /* allocated bytes */
  bool oom;   /* an allocation failed */
} tdm__conf_sb_t;

void tdm__conf_sb_putn(tdm__conf_sb_t *sb, const char *s, size_t n);
void tdm__conf_sb_puts(tdm__conf_sb_t *sb, const char *s);
void tdm__conf_sb_printf(tdm__conf_sb_t *sb, const char *fmt, ...) TDM_PRINTF(2, 3);
const char *tdm__conf_sb_str(const tdm__conf_sb_t *sb); /* "" when empty */
void tdm__conf_sb_free(tdm__conf_sb_t *sb);
/* Appends the shortest %g form of v that reads back to the same double. */
void tdm__conf_put_double(tdm__conf_sb_t *sb, double v);

/* Value types (conf_value.c, conf_list.c). parse() stores into `field` only on success; on failure it returns
 * TDM_ECONF (or TDM_ENOMEM), writes the reason to `why` (without the value when `secret`) and the
 * index of the offending item to *bad_item. */
typedef struct tdm__conf_type_ops_s {
  int (*parse)(const tdm_conf_key_t *key, void *field, const tdm__conf_value_t *val, bool secret,
               char *why, size_t whylen, size_t *bad_item); /* text -> field */
  void (*render)(const tdm_conf_key_t *key, const void *field, tdm__conf_sb_t *sb); /* field -> text */
  void (*destroy)(void *field); /* frees what the field owns and zeroes it */
} tdm__conf_type_ops_t;

extern const tdm__conf_type_ops_t *const tdm__conf_types[TDM_CONF_T_MAX]; /* conf_value.c */
extern const tdm__conf_type_ops_t tdm__conf_hosts_ops;   /* conf_list.c */
extern const tdm__conf_type_ops_t tdm__conf_addrs_ops;   /* conf_list.c */
extern const tdm__conf_type_ops_t tdm__conf_buckets_ops; /* conf_list.c */

/* Parsing helpers shared by the value types (conf_text.c). */
/* Writes `what` to why, then ", got '<value>'" unless `secret`; returns TDM_ECONF. */
int tdm__conf_refuse(char *why, size_t whylen, bool secret, const char *text, size_t len, const char *what);
/* The single scalar of a non-list value (no sequence, no NUL byte), or TDM_ECONF with the reason. */
int tdm__conf_one_scalar(const tdm__conf_value_t *val, char *why, size_t whylen, const tdm__conf_item_t **out);
/* Copies p[0..len) trimmed of ASCII space into buf, NUL-terminated; false if it does not fit. */
bool tdm__conf_token(const char *p, size_t len, char *buf, size_t buflen);
/* A whole finite decimal number. */
bool tdm__conf_parse_double(const char *buf, double *out);

/* One element of a list value: a comma-separated piece of one item, trimmed, never empty. */
typedef struct tdm__conf_elem_s {
  const char *p; /* first byte */
  size_t len;    /* length */
  size_t item;   /* index of the item it came from */
} tdm__conf_elem_t;

/* Splits every item of `val` at commas, skipping empty pieces; *out is malloc'd (NULL when none).
 * Returns 0, TDM_ENOMEM, or TDM_ECONF (a NUL byte) with why and *bad_item set. */
int tdm__conf_split(const tdm__conf_value_t *val, tdm__conf_elem_t **out, size_t *n, char *why, size_t whylen,
                    size_t *bad_item);

/* Parses `val` into the field of `key` in `conf`. */
int tdm__conf_set(tdm_conf_t *conf, const tdm_conf_key_t *key, const tdm__conf_value_t *val, char *why,
                  size_t whylen, size_t *bad_item);
/* Renders a key's value; `reveal` shows secrets (comparison only, never for output). */
void tdm__conf_render_sb(const tdm_conf_t *conf, const tdm_conf_key_t *key, bool reveal,
                         tdm__conf_sb_t *sb);
/* Quotes a value excerpt for a message: printable ASCII kept, others as \xNN, long values cut. */
void tdm__conf_quote(char *out, size_t outlen, const char *s, size_t len);

/* Allocates a snapshot holding every default (one reference). */
int tdm__conf_new_defaults(tdm_conf_t **out);
void *tdm__conf_field(tdm_conf_t *conf, const tdm_conf_key_t *key);
const void *tdm__conf_cfield(const tdm_conf_t *conf, const tdm_conf_key_t *key);

/* Loader state for one load. */
typedef struct tdm__conf_loader_s {
  tdm_conf_t *conf;          /* snapshot under construction */
  const char *name;          /* file name for messages, NULL when there is no file */
  tdm_conf_diag_t *diag;     /* errors and warnings go here */
  uint32_t seen_line[TDM_CONF_KEY_MAX]; /* per key: line where the file set it, 0 = not yet */
  bool oom;                  /* an allocation failed somewhere */
  bool stop;                 /* too many errors: collect no more */
} tdm__conf_loader_t;

void tdm__conf_error(tdm__conf_loader_t *ld, const char *fmt, ...) TDM_PRINTF(2, 3);
void tdm__conf_warn(tdm__conf_loader_t *ld, const char *fmt, ...) TDM_PRINTF(2, 3);
/* "file:line:col" of a key from its origin, the env variable, or the file name alone for defaults. */
void tdm__conf_where(const tdm__conf_loader_t *ld, const tdm_conf_key_t *key, char *out, size_t outlen);

/* Stages. Each adds errors to the loader; the caller checks diag->nerrors. */
void tdm__conf_yaml_apply(tdm__conf_loader_t *ld, const char *data, size_t len); /* conf_yaml.c */
void tdm__conf_env_apply(tdm__conf_loader_t *ld, char *const *envp);            /* conf_env.c */
void tdm__conf_resolve(tdm_conf_t *conf);                     /* conf_validate.c: default ports */
void tdm__conf_validate(tdm__conf_loader_t *ld);              /* conf_validate.c: cross-key rules */
void tdm__conf_warn_effects(tdm__conf_loader_t *ld);          /* conf_validate.c: WARN-only findings */

#endif
