/* tdm_strerror: one table names both tandem's TDM_E* codes and libuv's UV_E* codes. */
#include <uv.h>
#include <tandem/common.h>

const char *tdm_strerror(int err)
{
  switch (err) {
  case 0:
    return "ok";
#define TDM_ERRNO_CASE(name, val, text) case TDM_##name: return text;
  TDM_ERRNO_MAP(TDM_ERRNO_CASE)
#undef TDM_ERRNO_CASE
  default:
    break;
  }
  if (err < 0 && err > -20000)
    return uv_strerror(err);
  return "unknown error";
}
