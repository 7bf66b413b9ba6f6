/** Host names of bench:request's resolver targets, shared by bench/request.ts and its server child. */

/** The 'subdomain' target's base domain: user n sends `Host: t<n-1>.bench.test`. */
export const SUBDOMAIN_BASE = 'bench.test'
/** The 'domain' target's hosts: each tenant has the domain `<schema>.shop.example` in the domain table. */
export const DOMAIN_SUFFIX = 'shop.example'
