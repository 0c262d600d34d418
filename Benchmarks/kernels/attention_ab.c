// Times ck_attention_rows of two builds of the C kernels (shared libraries A and B) on the same inputs of one head,
// alternating them, and prints each build's min and median and B/A. Built and run by attention_ab.sh:
//     ab A.so B.so LENGTH HEAD_WIDTH ALIBI(0|1) [REPEATS ≤ 64]
// The largest |Δ| between the two outputs is printed too: a faster kernel must still compute the same attention.
// With ALIBI=1, the skipping inputs (bias suffix maxima, key tile norms) are filled in as Kernels.attention does,
// from whichever build exports ck_suffix_max and ck_key_tile_norms; a build older than them ignores those fields.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <math.h>
#include <dlfcn.h>
#include "ckernels.h"
typedef void (*pack_fn)(const float*,long,long,long,float*);
typedef int (*rows_fn)(const ck_attention_args*,long,long);
typedef void (*norms_fn)(const float*,long,long,float*);
typedef void (*suffix_fn)(const float*,long,float*);
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  if(argc<6){fprintf(stderr,"usage: ab A.so B.so LENGTH HEAD_WIDTH ALIBI [REPEATS]\n");return 2;}
  long T=atol(argv[3]), hs=atol(argv[4]); int alibi=atoi(argv[5]); int N=argc>6?atoi(argv[6]):15; if(N<1||N>64)N=15;
  void *h[2]={dlopen(argv[1],RTLD_NOW|RTLD_LOCAL),dlopen(argv[2],RTLD_NOW|RTLD_LOCAL)};
  if(!h[0]||!h[1]){fprintf(stderr,"%s\n",dlerror());return 1;}
  pack_fn pack[2]; rows_fn rows[2];
  for(int i=0;i<2;i++){pack[i]=(pack_fn)dlsym(h[i],"ck_pack_keys");rows[i]=(rows_fn)dlsym(h[i],"ck_attention_rows");}
  float *q=malloc(sizeof(float)*T*hs),*k=malloc(sizeof(float)*T*hs),*v=malloc(sizeof(float)*T*hs),*o[2]={malloc(sizeof(float)*T*hs),malloc(sizeof(float)*T*hs)};
  srand(1); for(long i=0;i<T*hs;i++){q[i]=(rand()/(float)RAND_MAX-0.5f)*3;k[i]=(rand()/(float)RAND_MAX-0.5f)*3;v[i]=rand()/(float)RAND_MAX-0.5f;}
  float *kp=malloc(sizeof(float)*((T+63)/64*64)*hs); pack[0](k,hs,T,hs,kp);
  float *bias=malloc(sizeof(float)*T); for(long d=0;d<T;d++) bias[d]=-0.0625f*d;
  float *bound=NULL,*norms=NULL;
  for(int i=1;i>=0&&alibi&&!bound;i--){
    norms_fn tn=(norms_fn)dlsym(h[i],"ck_key_tile_norms"); suffix_fn sm=(suffix_fn)dlsym(h[i],"ck_suffix_max");
    if(tn&&sm){bound=malloc(sizeof(float)*T);norms=malloc(sizeof(float)*((T+63)/64));sm(bias,T,bound);tn(kp,T,hs,norms);}
  }
  double times[2][64];
  for(int rep=0;rep<N;rep++) for(int s=0;s<2;s++){
    ck_attention_args a={0}; a.length=T;a.head_width=hs;a.q=q;a.q_stride=hs;a.k_packed=kp;a.v=v;a.v_stride=hs;a.out=o[s];a.out_stride=hs;a.scale=1/sqrtf(hs);
    if(alibi){a.bias_kind=CK_BIAS_DISTANCE;a.distance_bias=bias;a.distance_bias_bound=bound;a.key_tile_norms=norms;}
    double t0=now(); for(long b=0;b<T;b+=128) rows[s](&a,b,b+128<T?b+128:T); times[s][rep]=now()-t0;}
  double flops=2.0*2*hs*(double)T*(T+1)/2, maxabs=0;
  for(long i=0;i<T*hs;i++){double d=fabs(o[0][i]-o[1][i]); if(d>maxabs)maxabs=d;}
  for(int s=0;s<2;s++){qsort(times[s],N,sizeof(double),cmp); printf("%s: min %.2f ms (%.1f GFLOP/s) median %.2f ms\n",argv[1+s],times[s][0]*1e3,flops/times[s][0]/1e9,times[s][N/2]*1e3);}
  printf("ratio of medians B/A %.3f, of mins %.3f; max |B - A| %.3g (outputs are averages of values in [-0.5, 0.5])\n",times[1][N/2]/times[0][N/2],times[1][0]/times[0][0],maxabs);
}
