/* Mock nodes: identity (address bytes, host id, token) and the listener, which STOP closes and START
 * binds again on the same address, so a test can take a node down and bring it back. */
#include "conn.h"
#include "mock.h"
#include "values.h"

int tdm_mock_node_init(tdm_mock_t *mock, size_t index, const char *addr)
{
  tdm_mock_node_t *node = &mock->nodes[index];
  memset(node, 0, sizeof(*node));
  node->mock = mock;
  node->index = index;
  tdm_mock_list_init(&node->conns);
  int rc = tdm_mock_parse_addr(addr, &node->addr, node->host, sizeof(node->host), &node->port);
  if (rc) return rc;
  if (node->addr.ss_family == AF_INET6) {
    memcpy(node->inet, &((struct sockaddr_in6 *)&node->addr)->sin6_addr, 16);
    node->inet_len = 16;
  } else {
    memcpy(node->inet, &((struct sockaddr_in *)&node->addr)->sin_addr, 4);
    node->inet_len = 4;
  }
  snprintf(node->name, sizeof(node->name), node->addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", node->host,
           node->port);
  return 0;
}

/* Host ids and tokens need the final ports, so they are set once every node is bound. */
static void set_identity(tdm_mock_node_t *node)
{
  char seed[256];
  int n = snprintf(seed, sizeof(seed), "%s/%zu/%s", node->mock->opts.cluster_name, node->index, node->name);
  tdm_mock_md5(seed, (size_t)TDM_MIN((size_t)n, sizeof(seed) - 1), node->host_id);
  node->host_id[6] = (uint8_t)((node->host_id[6] & 0x0f) | 0x40); /* version 4 */
  node->host_id[8] = (uint8_t)((node->host_id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  /* Evenly spread Murmur3 tokens: node i of N owns INT64_MIN + i * (2^64 / N). */
  uint64_t step = UINT64_MAX / node->mock->n_nodes;
  node->token = (int64_t)((uint64_t)INT64_MIN + step * node->index);
}

static void on_connection(uv_stream_t *server, int status)
{
  tdm_mock_node_t *node = server->data;
  if (status < 0) return;
  int rc = tdm_mock_conn_accept(node);
  if (rc) tdm_mock_log(node->mock, "node %s: accept failed: %s", node->name, tdm_strerror(rc));
}

static void on_listener_close(uv_handle_t *h) { free(h); }

int tdm_mock_node_start(tdm_mock_node_t *node)
{
  if (node->listener) return 0;
  uv_tcp_t *l = malloc(sizeof(*l));
  if (!l) return TDM_ENOMEM;
  int rc = uv_tcp_init(&node->mock->loop, l);
  if (rc) {
    free(l);
    return rc;
  }
  l->data = node;
  rc = uv_tcp_bind(l, (const struct sockaddr *)&node->addr, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)l, 511, on_connection);
  if (rc) {
    uv_close((uv_handle_t *)l, on_listener_close);
    return rc;
  }
  node->listener = l;
  if (node->port == 0) {
    node->port = tdm_mock_bound_port(l);
    if (node->addr.ss_family == AF_INET6) ((struct sockaddr_in6 *)&node->addr)->sin6_port = htons(node->port);
    else ((struct sockaddr_in *)&node->addr)->sin_port = htons(node->port);
    snprintf(node->name, sizeof(node->name), node->addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", node->host,
             node->port);
  }
  set_identity(node);
  return 0;
}

size_t tdm_mock_node_kill(tdm_mock_node_t *node)
{
  size_t n = 0;
  tdm_mock_link_t *it, *tmp;
  TDM_MOCK_LIST_EACH(it, tmp, &node->conns)
  {
    tdm_mock_conn_close(TDM_MOCK_CONTAINER(it, tdm_mock_conn_t, link), false);
    n++;
  }
  return n;
}

void tdm_mock_node_stop(tdm_mock_node_t *node, bool kill)
{
  if (node->listener) {
    uv_close((uv_handle_t *)node->listener, on_listener_close);
    node->listener = NULL;
  }
  if (kill) tdm_mock_node_kill(node);
}

void tdm_mock_node_free(tdm_mock_node_t *node) { tdm_mock_prepared_clear(&node->prepared); }
