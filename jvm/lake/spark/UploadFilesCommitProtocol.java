package lake.spark;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.spark.internal.io.FileCommitProtocol;
import org.apache.spark.internal.io.FileNameSpec;
import org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils;
import scala.Option;
import scala.collection.Seq;

/**
 * Spark's commit protocol for the lake's publish (lib/jobs/publish.py): every task writes
 * its files once, straight under their final names in the zone, and nothing is renamed.
 *
 * <p>The write is partitioned by the upload first ({@code pub_upload=<id>/k=v/...}); that
 * level is not a folder of the zone but the start of the file's name:
 * {@code <zone>/k=v/.../<upload>_<run>_<task>.c<n>.snappy.parquet}. So one file holds the
 * rows of one upload, written by one run, and a name is the same in every attempt of a
 * task (a retried task overwrites what the failed attempt wrote). The run id comes from the
 * write's option {@code lake.publish.run_id}.
 *
 * <p>On an object store (S3, GCS) an object appears only once it is closed, whole, so the
 * task writes the final name itself. On a file system (local, HDFS) a file is visible while
 * it is written, and a rename is a cheap atomic metadata step: there the task writes
 * {@code .<name>} (hidden from readers) and renames each of its files into place when it
 * commits.
 *
 * <p>There is no job commit: the run's journal is the commit (which files make up an
 * upload's published state, which older ones to delete). A task that fails deletes the
 * files it wrote; a run that fails deletes the files of its uploads and run id.
 */
public class UploadFilesCommitProtocol extends FileCommitProtocol implements java.io.Serializable {
    public static final String RUN_ID = "lake.publish.run_id";
    public static final String UPLOAD_KEY = "pub_upload";

    /** File systems whose objects appear only when closed: written under the final name. */
    private static final Set<String> OBJECT_STORES = Set.of("s3", "s3a", "s3n", "gs");

    private final String path;
    private transient List<Path> written;  // final names, in the order the task opened them
    private transient List<Path> hidden;  // what each was written as (the same on a store)

    public UploadFilesCommitProtocol(String jobId, String path, boolean dynamicPartitionOverwrite) {
        if (dynamicPartitionOverwrite) {
            throw new IllegalArgumentException(
                "UploadFilesCommitProtocol adds files; a dynamic partition overwrite is not one");
        }
        this.path = path;
    }

    @Override
    public void setupJob(JobContext job) {
    }

    @Override
    public void commitJob(JobContext job, Seq<FileCommitProtocol.TaskCommitMessage> messages) {
    }

    @Override
    public void abortJob(JobContext job) {
    }

    @Override
    public void setupTask(TaskAttemptContext task) {
        written = new ArrayList<>();
        hidden = new ArrayList<>();
    }

    @Override
    public String newTaskTempFile(TaskAttemptContext task, Option<String> dir, String ext) {
        return newTaskTempFile(task, dir, new FileNameSpec("", ext));
    }

    @Override
    public String newTaskTempFile(TaskAttemptContext task, Option<String> dir, FileNameSpec spec) {
        String runId = task.getConfiguration().get(RUN_ID, "");
        if (runId.isEmpty()) {
            throw new IllegalStateException("the write has no " + RUN_ID + " option");
        }
        String partition = dir.isDefined() ? dir.get() : "";
        int slash = partition.indexOf('/');
        String first = slash < 0 ? partition : partition.substring(0, slash);
        if (!first.startsWith(UPLOAD_KEY + "=")) {
            throw new IllegalStateException(
                "the write is not partitioned by " + UPLOAD_KEY + " first: '" + partition + "'");
        }
        String upload = ExternalCatalogUtils.unescapePathName(first.substring(UPLOAD_KEY.length() + 1));
        int split = task.getTaskAttemptID().getTaskID().getId();
        String name = String.format("%s_%s_%05d%s", upload, runId, split, spec.suffix());
        Path parent = slash < 0 ? new Path(path) : new Path(path, partition.substring(slash + 1));
        Path file = new Path(parent, spec.prefix() + name);
        Path target = objectStore(file, task.getConfiguration())
            ? file : new Path(parent, "." + spec.prefix() + name);
        written.add(file);
        hidden.add(target);
        return target.toString();
    }

    private static boolean objectStore(Path file, Configuration conf) {
        try {
            return OBJECT_STORES.contains(file.getFileSystem(conf).getScheme());
        } catch (IOException e) {
            throw new IllegalStateException("no file system for " + file, e);
        }
    }

    @Override
    public String newTaskTempFileAbsPath(TaskAttemptContext task, String absoluteDir, String ext) {
        throw new UnsupportedOperationException("the lake writes no custom partition locations");
    }

    @Override
    public FileCommitProtocol.TaskCommitMessage commitTask(TaskAttemptContext task) {
        try {
            for (int i = 0; i < written.size(); i++) {
                Path from = hidden.get(i);
                Path to = written.get(i);
                if (!from.equals(to)) {
                    FileSystem fs = from.getFileSystem(task.getConfiguration());
                    fs.delete(to, false);  // an earlier attempt of this task wrote it
                    if (!fs.rename(from, to)) {
                        throw new IOException("could not rename " + from + " to " + to);
                    }
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("task commit failed: " + e.getMessage(), e);
        }
        return new FileCommitProtocol.TaskCommitMessage(written.size());
    }

    @Override
    public void abortTask(TaskAttemptContext task) {
        List<Path> all = new ArrayList<>(written);
        all.addAll(hidden);
        for (Path file : all) {
            try {
                file.getFileSystem(task.getConfiguration()).delete(file, false);
            } catch (IOException e) {
                // the run deletes every file of its uploads and run id when it fails
            }
        }
    }
}
