/* Delivery latency of librdkafka alone, with the bridge's producer defaults: produces 1 KiB
 * messages with distinct keys at RATE messages/s for SECONDS, in bursts of BURST messages
 * (as paced HTTP connections deliver them), and prints the percentiles of the time from
 * produce to delivery report. Tells the broker's and librdkafka's share of a Kafka-acknowledged
 * request's latency from the bridge's. Extra librdkafka properties: NAME=VALUE arguments.
 *
 *   gcc -O2 -o .build-bench/kafka-latency bench/kafka-latency.c $(pkg-config --cflags --libs rdkafka)
 *   .build-bench/kafka-latency BOOTSTRAPS RATE SECONDS BURST [NAME=VALUE ...]
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double *latencies;
static size_t reported;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque) {
    (void)rk, (void)opaque;
    double *sent = message->_private;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) latencies[reported++] = now_ms() - *sent;
    free(sent);
}

static int ascending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void produce(rd_kafka_t *rk, long n) {
    static char payload[1024];
    char key[32];
    double *sent = malloc(sizeof *sent);
    *sent = now_ms();
    snprintf(key, sizeof key, "k%ld", n);
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("webhooks"), RD_KAFKA_V_KEY(key, strlen(key)),
                      RD_KAFKA_V_VALUE(payload, sizeof payload), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_OPAQUE(sent), RD_KAFKA_V_END);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s BOOTSTRAPS RATE SECONDS BURST [NAME=VALUE ...]\n", argv[0]);
        return 2;
    }
    long rate = atol(argv[2]), total = rate * atol(argv[3]), burst = atol(argv[4]);
    char error[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *settings[][2] = {{"bootstrap.servers", argv[1]}, {"acks", "all"}, {"enable.idempotence", "true"},
                                 {"linger.ms", "1"}, {"max.in.flight", "1"}};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        rd_kafka_conf_set(conf, settings[i][0], settings[i][1], error, sizeof error);
    for (int i = 5; i < argc; i++) {
        char *name = strdup(argv[i]), *value = strchr(name, '=');
        if (!value) { fprintf(stderr, "not NAME=VALUE: %s\n", argv[i]); return 2; }
        *value++ = 0;
        if (rd_kafka_conf_set(conf, name, value, error, sizeof error) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "%s\n", error);
            return 2;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    if (!rk) { fprintf(stderr, "%s\n", error); return 1; }
    latencies = malloc(sizeof *latencies * (total + 100));
    for (long i = 0; i < 100; i++) produce(rk, -i); /* connections and metadata */
    rd_kafka_flush(rk, 10000);
    reported = 0;
    double start = now_ms();
    for (long sent = 0; sent < total;) {
        double due = start + (double)(sent / burst * burst) * 1e3 / rate, wait = due - now_ms();
        if (wait > 0) {
            rd_kafka_poll(rk, wait < 1 ? 1 : (int)wait);
            continue;
        }
        produce(rk, sent++);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 30000);
    qsort(latencies, reported, sizeof *latencies, ascending);
    if (reported == 0) { fprintf(stderr, "no delivery reports\n"); return 1; }
    printf("%zu delivered: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", reported, latencies[reported / 2],
           latencies[reported * 9 / 10], latencies[reported * 99 / 100], latencies[reported - 1]);
    rd_kafka_destroy(rk);
    return 0;
}
