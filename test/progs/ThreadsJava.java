// SPDX-License-Identifier: MIT
//
// A multi-threaded Java program for the restore tests of a real JVM
// (test/integ/threads.c compiles it with javac at test time).
//
//   java -cp DIR ThreadsJava
//
// Four worker threads and the main thread run rounds between two
// CyclicBarriers: each round every worker updates its ThreadLocal state
// and, under a synchronized block and a ReentrantLock, shared sums; then
// the main thread prints "ROUND CHECKSUM" (one write per line), the
// checksum folding in everything, and sleeps 10 ms. The output depends
// only on the round, so a restored JVM's output continues an uninterrupted
// run's exactly.
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.locks.ReentrantLock;

public class ThreadsJava {
	static final int WORKERS = 4;
	static final Object monitor = new Object();
	static final ReentrantLock lock = new ReentrantLock();
	static final CyclicBarrier start = new CyclicBarrier(WORKERS + 1);
	static final CyclicBarrier end = new CyclicBarrier(WORKERS + 1);
	static final ThreadLocal<long[]> local = ThreadLocal.withInitial(() -> new long[1]);
	static final long[] published = new long[WORKERS];
	static long sumMonitor, sumLock;

	static long mix(long x) {
		x += 0x9e3779b97f4a7c15L;
		x = (x ^ (x >>> 30)) * 0xbf58476d1ce4e5b9L;
		x = (x ^ (x >>> 27)) * 0x94d049bb133111ebL;
		return x ^ (x >>> 31);
	}

	static void work(int i) {
		long[] acc = local.get();
		acc[0] = mix(i + 1);
		try {
			for (long r = 1;; r++) {
				start.await();
				acc[0] = mix(acc[0] ^ (r << 8) ^ i);
				synchronized (monitor) {
					sumMonitor += mix(acc[0]);
				}
				lock.lock();
				try {
					sumLock += mix(acc[0] + 1);
				} finally {
					lock.unlock();
				}
				published[i] = acc[0];
				end.await();
			}
		} catch (Exception e) {
			System.out.println("ERROR " + e);
			System.exit(3);
		}
	}

	public static void main(String[] args) throws Exception {
		for (int i = 0; i < WORKERS; i++) {
			final int k = i;
			Thread t = new Thread(() -> work(k), "worker-" + i);
			t.setDaemon(true);
			t.start();
		}
		long sum = 0;
		for (long r = 1;; r++) {
			start.await();
			end.await();
			sum = mix(sum ^ r);
			sum = mix(sum ^ sumMonitor);
			sum = mix(sum ^ sumLock);
			for (int i = 0; i < WORKERS; i++)
				sum = mix(sum ^ published[i]);
			byte[] line = String.format("%d %016x\n", r, sum).getBytes(StandardCharsets.US_ASCII);
			System.out.write(line, 0, line.length);
			System.out.flush();
			Thread.sleep(10);
		}
	}
}
