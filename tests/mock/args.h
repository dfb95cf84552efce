/* Tokenizer for the mock's line commands (control interface and --script files): bare words and
 * key=value fields, where a value is bare (up to the next space) or quoted with "..." (escapes \" \\
 * \n \t \r \xHH; any other backslash is kept) or '...' (no escapes). Values are unescaped into the
 * struct's own buffer. */
#ifndef TDM_MOCK_ARGS_H
#define TDM_MOCK_ARGS_H

#include <tandem/common.h>
#include <tandem/util/str.h>

#define TDM_MOCK_ARGS_MAX 32
#define TDM_MOCK_ARGS_WORDS 4
#define TDM_MOCK_ARGS_BUF 16384

typedef struct tdm_mock_arg_s {
  tdm_str_t key;   /* field name (lower-cased in place) */
  tdm_str_t value; /* unescaped value */
  bool used;       /* read by a getter (unused ones are reported as unknown) */
} tdm_mock_arg_t;

typedef struct tdm_mock_args_s {
  tdm_str_t words[TDM_MOCK_ARGS_WORDS]; /* bare words before the first field (upper-cased in place) */
  size_t n_words;                       /* bare words */
  tdm_mock_arg_t items[TDM_MOCK_ARGS_MAX]; /* key=value fields in order */
  size_t n;                             /* fields */
  char buf[TDM_MOCK_ARGS_BUF];          /* storage for words, keys and unescaped values */
  size_t buf_len;                       /* bytes used in buf */
} tdm_mock_args_t;

/* Parses one line (no newline). On error returns TDM_EINVAL with *why naming the defect. */
TDM_MUSTCHECK int tdm_mock_args_parse(const char *line, size_t len, tdm_mock_args_t *out, const char **why);
/* The value of the first field named key, marking it used. */
bool tdm_mock_args_get(tdm_mock_args_t *a, const char *key, tdm_str_t *out);
/* Integer field (decimal or 0x hex); TDM_EINVAL if present but not a number. *found tells presence. */
TDM_MUSTCHECK int tdm_mock_args_get_int(tdm_mock_args_t *a, const char *key, int64_t *out, bool *found);
/* The first field no getter asked for, or NULL. */
const char *tdm_mock_args_unused(const tdm_mock_args_t *a, char *buf, size_t cap);
/* Parses a whole string as an integer (decimal or 0x hex). */
TDM_MUSTCHECK int tdm_mock_parse_int(tdm_str_t s, int64_t *out);

#endif
