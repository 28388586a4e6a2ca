/* Stand-in for macOS's <libproc.h>, for type-checking on Linux only (never for a real Mac build).
 * netstat2's build script runs bindgen on <libproc.h>; this declares just the types, constants and
 * functions its macOS code names, with the layout of the SDK's sys/proc_info.h. .ci/cross.sh hands
 * it to bindgen through BINDGEN_EXTRA_CLANG_ARGS_aarch64_apple_darwin=-I.ci/cross. */
/* Self-contained: the build host's <stdint.h> is glibc's, which does not parse for Darwin. */
typedef signed int int32_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;

#define PROC_PIDLISTFDS 1
#define PROC_PIDTASKALLINFO 2
#define PROC_PIDFDSOCKETINFO 3
#define AF_INET 2
#define AF_INET6 30
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct proc_fdinfo { int32_t proc_fd; uint32_t proc_fdtype; };
struct in_addr { uint32_t s_addr; };
struct in6_addr { union { uint8_t __u6_addr8[16]; uint16_t __u6_addr16[8]; uint32_t __u6_addr32[4]; } __u6_addr; };
struct in4in6_addr { uint32_t i46a_pad32[3]; struct in_addr i46a_addr4; };
struct in_sockinfo {
  int insi_fport; int insi_lport; uint64_t insi_gencnt; uint32_t insi_flags; uint32_t insi_flow;
  uint8_t insi_vflag; uint8_t insi_ip_ttl; uint32_t rfu_1;
  union { struct in4in6_addr ina_46; struct in6_addr ina_6; } insi_faddr;
  union { struct in4in6_addr ina_46; struct in6_addr ina_6; } insi_laddr;
};
struct tcp_sockinfo { struct in_sockinfo tcpsi_ini; int tcpsi_state; int tcpsi_timer[4]; int tcpsi_mss; uint32_t tcpsi_flags; uint32_t rfu_1; uint64_t tcpsi_tp; };
struct socket_info {
  int soi_type; int soi_protocol; int soi_family; int soi_kind;
  union { struct in_sockinfo pri_in; struct tcp_sockinfo pri_tcp; char pad[528]; } soi_proto;
};
struct proc_fileinfo { uint32_t fi_openflags; uint32_t fi_status; int64_t fi_offset; int32_t fi_type; uint32_t fi_guardflags; };
struct socket_fdinfo { struct proc_fileinfo pfi; struct socket_info psi; };

#ifdef __cplusplus
extern "C" {
#endif
int proc_listpids(uint32_t type, uint32_t typeinfo, void *buffer, int buffersize);
int proc_pidinfo(int pid, int flavor, uint64_t arg, void *buffer, int buffersize);
int proc_pidfdinfo(int pid, int fd, int flavor, void *buffer, int buffersize);
#ifdef __cplusplus
}
#endif
